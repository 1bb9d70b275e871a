// Progressive enhancement only: every action also works as a plain form without this script.
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      event.preventDefault();
    }
  });

  var form = document.getElementById("review-form");
  if (!form) return;
  var items = Array.prototype.slice.call(form.querySelectorAll(".item"));
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      items.forEach(function (item) { item.querySelector("input[name=keys]").checked = all.checked; });
    });
  }
  var current = -1;

  function move(to) {
    if (!items.length) return;
    if (current >= 0) items[current].classList.remove("current");
    current = Math.max(0, Math.min(items.length - 1, to));
    var item = items[current];
    item.classList.add("current");
    item.focus({ preventScroll: true });
    item.scrollIntoView({ block: "nearest" });
    // The sticky bar covers the top of the window: an item under it is moved just below it.
    var bar = form.querySelector(".bulk");
    if (bar) {
      var barBottom = bar.getBoundingClientRect().bottom;
      var top = item.getBoundingClientRect().top;
      if (top < barBottom + 8) window.scrollBy(0, top - barBottom - 8);
    }
  }

  function selectCurrentIfNone() {
    var picked = form.querySelectorAll("input[name=keys]:checked");
    if (picked.length === 0 && current >= 0) items[current].querySelector("input[name=keys]").checked = true;
    return form.querySelectorAll("input[name=keys]:checked").length > 0;
  }

  var reasonField = document.getElementById("reason");
  // An empty page has no bar; its pager keys still work.
  if (reasonField) {
    reasonField.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        if (selectCurrentIfNone()) form.requestSubmit(document.getElementById("reject"));
      }
    });
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (target.matches && target.matches("input[type=text], input[type=search], textarea, select")) return;
    switch (event.key) {
      case "j": move(current + 1); break;
      case "k": move(current - 1); break;
      case "x":
        if (current >= 0) {
          var box = items[current].querySelector("input[name=keys]");
          box.checked = !box.checked;
        }
        break;
      case "p":
        if (current >= 0) {
          var player = items[current].querySelector("audio");
          if (player) { if (player.paused) player.play(); else player.pause(); }
        }
        break;
      case "a":
        if (selectCurrentIfNone()) form.requestSubmit(document.getElementById("approve"));
        break;
      case "r":
        if (reasonField) reasonField.focus();
        break;
      case "n":
      case "b":
        var link = document.getElementById(event.key === "n" ? "next" : "prev");
        if (link) window.location.href = link.href;
        break;
      default: return;
    }
    event.preventDefault();
  });
})();
