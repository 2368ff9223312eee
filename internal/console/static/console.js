// ivrd console: live calls polled from live.json, waveforms drawn from the recordings'
// decoded audio (Web Audio), and a confirmation before deleting. No build step.
(function () {
  'use strict';

  // Live calls: the table's data-src answers {"calls":[...]} every second.
  function pollLive(table) {
    var operator = table.dataset.operator === 'true';
    var empty = document.getElementById('live-empty');
    function cell(tr, text) {
      var td = document.createElement('td');
      td.textContent = text;
      tr.appendChild(td);
      return td;
    }
    function render(calls) {
      var body = document.createElement('tbody');
      calls.forEach(function (c) {
        var tr = document.createElement('tr');
        tr.dataset.session = c.session;
        var a = document.createElement('a');
        a.href = '/console/sessions/' + encodeURIComponent(c.session);
        a.textContent = c.session;
        cell(tr, '').appendChild(a);
        if (operator) cell(tr, c.app);
        cell(tr, c.from);
        cell(tr, c.to);
        cell(tr, c.started);
        cell(tr, c.duration);
        cell(tr, c.block || '—');
        cell(tr, c.phase);
        cell(tr, c.paused ? 'paused' : (c.recording ? 'on' : 'off'));
        body.appendChild(tr);
      });
      table.replaceChild(body, table.tBodies[0]);
      if (empty) empty.hidden = calls.length > 0;
      table.dataset.updated = String(Date.now());
    }
    function poll() {
      fetch(table.dataset.src, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then(function (r) {
          if (r.status === 401) {
            location.href = '/console/login?next=' + encodeURIComponent(location.pathname);
            throw new Error('signed out');
          }
          if (!r.ok) throw new Error('HTTP ' + r.status);
          return r.json();
        })
        .then(function (d) { render(d.calls || []); })
        .catch(function () {})
        .then(function () { setTimeout(poll, 1000); });
    }
    poll();
  }

  // Waveforms: each canvas.wave fetches its recording (same origin, the session cookie),
  // decodes it with Web Audio and draws the peak of each pixel column, both channels of a
  // dual recording (left above, right below the middle line).
  function drawWave(canvas) {
    return fetch(canvas.dataset.src, { credentials: 'same-origin' })
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.arrayBuffer();
      })
      .then(function (buf) {
        var ctx = new OfflineAudioContext(1, 1, 8000);
        return ctx.decodeAudioData(buf);
      })
      .then(function (audio) {
        var g = canvas.getContext('2d');
        var w = canvas.width, h = canvas.height;
        var chans = [];
        for (var c = 0; c < audio.numberOfChannels; c++) chans.push(audio.getChannelData(c));
        var n = chans[0].length, per = Math.max(1, Math.floor(n / w)), peak = 0;
        g.clearRect(0, 0, w, h);
        g.fillStyle = '#2b6cb0';
        for (var x = 0; x < w; x++) {
          var lo = x * per, hi = Math.min(n, lo + per);
          for (var k = 0; k < chans.length; k++) {
            var m = 0, d = chans[k];
            for (var i = lo; i < hi; i++) {
              var v = d[i] < 0 ? -d[i] : d[i];
              if (v > m) m = v;
            }
            if (m > peak) peak = m;
            var bar = Math.max(1, m * (h / 2 - 1));
            if (chans.length === 1) g.fillRect(x, h / 2 - bar, 1, 2 * bar);
            else if (k === 0) g.fillRect(x, h / 2 - bar, 1, bar);
            else g.fillRect(x, h / 2, 1, bar);
          }
        }
        canvas.dataset.peak = peak.toFixed(3);
        canvas.dataset.seconds = audio.duration.toFixed(2);
        canvas.dataset.drawn = 'yes';
      })
      .catch(function (e) { canvas.dataset.drawn = 'error: ' + e.message; });
  }

  document.addEventListener('DOMContentLoaded', function () {
    var live = document.getElementById('live');
    if (live) pollLive(live);
    var waves = Array.prototype.slice.call(document.querySelectorAll('canvas.wave'));
    (function next() { // one at a time: a page of recordings is not fetched all at once
      var c = waves.shift();
      if (c) drawWave(c).then(next);
    })();
    document.querySelectorAll('form[data-confirm]').forEach(function (f) {
      f.addEventListener('submit', function (ev) {
        if (!window.confirm(f.dataset.confirm)) ev.preventDefault();
      });
    });
  });
})();
