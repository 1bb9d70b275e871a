"""Operations tools run by an operator against a store: backup and restore, master-key rotation.

They sit beside the server rather than inside it: they open the store through the server's
settings and store modules, and the server never imports them.
"""
