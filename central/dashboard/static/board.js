// The live alert board: listens to central's alert stream (server-sent events, the
// session cookie goes with it), swaps in fresh rows when anything changes, shows a banner
// and plays a tone for a new critical alert (silenced with the Sound button, remembered
// in this browser), and ticks the "late by" and "waiting" counters every second.
(function () {
  "use strict";
  var board = document.getElementById("board");
  var banner = document.getElementById("new-critical");
  var toggle = document.getElementById("sound-toggle");
  var serverNow = Date.parse(document.body.dataset.serverNow);
  var offset = isNaN(serverNow) ? 0 : serverNow - Date.now();
  var soundOn = localStorage.getItem("homecall-sound") !== "off";
  var audio = null;
  document.body.dataset.cues = "0";

  function showSound() {
    toggle.textContent = soundOn ? "Sound on" : "Sound off";
    toggle.setAttribute("aria-pressed", soundOn ? "true" : "false");
  }
  toggle.addEventListener("click", function () {
    soundOn = !soundOn;
    localStorage.setItem("homecall-sound", soundOn ? "on" : "off");
    showSound();
    if (soundOn && !audio && window.AudioContext) { audio = new AudioContext(); }
  });
  showSound();

  function cue() {
    if (!soundOn || !window.AudioContext) { return; }
    try {
      audio = audio || new AudioContext();
      var tone = audio.createOscillator();
      var gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.value = 0.2;
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.6);
      document.body.dataset.cues = String(Number(document.body.dataset.cues) + 1);
    } catch (err) { /* no audio device: the banner still shows */ }
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function duration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + "h " + pad(m) + "m " : m + "m ") + pad(s % 60) + "s";
  }
  function tick() {
    var now = Date.now() + offset;
    var counters = board.querySelectorAll("[data-since]");
    for (var i = 0; i < counters.length; i++) {
      var el = counters[i];
      var since = Date.parse(el.dataset.since);
      if (isNaN(since)) { continue; }
      if (now < since && el.classList.contains("late")) { el.textContent = "not late yet"; continue; }
      el.textContent = (el.dataset.prefix || "") + duration(now - since);
    }
  }

  var refreshing = false, again = false;
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    var query = board.dataset.query ? "?" + board.dataset.query : "";
    fetch("/board/rows" + query, {credentials: "same-origin"})
      .then(function (r) {
        if (r.status === 401 || r.redirected) { location.href = "/login"; }
        return r.text();
      })
      .then(function (html) { board.innerHTML = html; tick(); })
      .finally(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  var stream = new EventSource("/api/alerts/stream");
  ["new", "acknowledged", "escalated", "resolved", "superseded", "reopened"].forEach(
    function (kind) {
      stream.addEventListener(kind, function (event) {
        var change = JSON.parse(event.data);
        if (kind === "new" && change.alert && change.alert.severity === "critical") {
          banner.hidden = false;
          banner.textContent = "New critical alert: " + change.alert.type.replace(/_/g, " ") +
            " (gateway " + change.alert.gateway + ")";
          cue();
        }
        refresh();
      });
    });
  stream.onopen = function () { document.body.dataset.live = "yes"; };
  setInterval(tick, 1000);
  tick();
})();
