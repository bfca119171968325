// Shows that the script loaded, from which (hashed) URL, and fills in the year.
(function () {
  "use strict";
  var status = document.getElementById("script-status");
  var script = document.currentScript || document.querySelector("script[src*='app.']");
  status.textContent = "JavaScript ran, loaded from " + new URL(script.src).pathname + ".";
  status.className = "ran";
  document.getElementById("year").textContent = String(new Date().getFullYear());
})();
