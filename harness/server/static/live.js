// Deadline countdowns, the board's self-refresh and confirmations (no framework, no network
// but this server).
(function () {
  "use strict";
  function pad(n) { return String(n).padStart(2, "0"); }
  function tick() {
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var left = Math.floor((Date.parse(el.dataset.deadline) - Date.now()) / 1000);
      if (isNaN(left)) { return; }
      if (left <= 0) { el.textContent = "deadline passed"; el.classList.add("over"); return; }
      var d = Math.floor(left / 86400), h = Math.floor(left / 3600) % 24,
          m = Math.floor(left / 60) % 60, s = left % 60;
      if (d >= 60) {            // far away: a date reads better than a count of days
        el.textContent = "until " + new Date(el.dataset.deadline).toISOString().slice(0, 10) +
          " UTC";
      } else if (d >= 2) {
        el.textContent = d + " days left";
      } else {
        el.textContent = (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(s) + " left";
      }
      el.classList.toggle("soon", left < 3600);
    });
  }
  // A competition's page asks the board API first, with the ETag of the board it shows:
  // 304 (nothing changed) costs the server next to nothing and the page is left as it is.
  var boardTag = null;
  function boardProbe() {
    var m = window.location.pathname.match(/^\/competitions\/([^\/]+)\/?$/);
    // one row is enough: the tag covers the whole board and the competition's state
    return m ? "/api/competitions/" + m[1] + "/leaderboard?limit=1" : null;
  }
  function reload() {
    // swap the page's <main> for a fresh copy; the scroll position stays where it is
    return fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return false; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        var live = document.getElementById("live");
        if (fresh && live) { live.innerHTML = fresh.innerHTML; tick(); }
        return true;
      });
  }
  function refresh() {
    var probe = boardProbe();
    if (!probe) { reload().catch(function () { /* the server may restart */ }); return; }
    var headers = boardTag ? { "If-None-Match": boardTag } : {};
    // no-store: the browser sends our If-None-Match as is and hands us the 304 itself
    fetch(probe, { cache: "no-store", credentials: "omit", headers: headers })
      .then(function (r) {
        if (r.status === 304) { return; }
        // the page is fetched after the tag: what it shows is never older than the tag
        var tag = r.ok ? r.headers.get("ETag") : null;
        return reload().then(function (done) { if (done) { boardTag = tag; } });
      })
      .catch(function () { /* the server may restart; try again next time */ });
  }
  // a form with data-confirm asks first (the teacher's close, reopen and reveal buttons);
  // a listener here, as the page's CSP allows no inline script
  document.addEventListener("submit", function (event) {
    var ask = event.target.dataset ? event.target.dataset.confirm : null;
    if (ask && !window.confirm(ask)) { event.preventDefault(); }
  });
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    var every = parseInt(document.body.dataset.refresh || "0", 10);
    if (every > 0) { setInterval(refresh, every * 1000); }
  });
})();
