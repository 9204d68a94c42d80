// Live pages: every few seconds, fetch this page again and swap the part inside <main id="live">,
// except the parts marked data-static (the diagrams), and not while the reader is typing or has
// ticked a box (a dead letter chosen for redrive stays chosen).
(function () {
  var seconds = Number(document.body.dataset.refresh || 0);
  var status = document.getElementById("live-status");
  function busy() {
    var active = document.activeElement;
    if (active && /INPUT|SELECT|TEXTAREA/.test(active.tagName)) return true;
    return document.querySelector("main input[type=checkbox]:checked") !== null
      || document.querySelector("main details[open]") !== null;
  }
  function refresh() {
    if (document.visibilityState !== "visible" || busy()) return;
    fetch(location.href, { headers: { "X-Live": "1" } }).then(function (r) {
      if (!r.ok) throw new Error(r.status);
      return r.text();
    }).then(function (text) {
      var next = new DOMParser().parseFromString(text, "text/html").getElementById("live");
      var main = document.getElementById("live");
      if (!next || !main) return;
      var kept = main.querySelector("[data-static]");
      var fresh = next.querySelector("[data-static]");
      if (kept && fresh) fresh.replaceWith(kept);
      main.replaceChildren.apply(main, Array.prototype.slice.call(next.childNodes));
      if (status) status.textContent = "live · updated " + new Date().toLocaleTimeString();
    }).catch(function (e) { if (status) status.textContent = "live · refresh failed (" + e.message + ")"; });
  }
  if (seconds > 0) setInterval(refresh, seconds * 1000);
  if (window.mermaid) {
    window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", flowchart: { htmlLabels: true } });
    window.mermaid.run({ querySelector: "pre.mermaid" }).then(function () {
      document.body.dataset.diagrams = "rendered";
    });
  }
})();
