// The samptwist hub status page: a snapshot from state.json, then live
// updates from the server-sent events feed.  Text is always inserted with
// textContent (never as HTML); icons only from http(s) or data: URLs.
"use strict";
(function () {
  var key = new URLSearchParams(location.search).get("key") || "";
  var q = "?key=" + encodeURIComponent(key);
  var startedAt = null;
  var log = [];
  var clients = [];
  var MAX_LOG = 200;

  function $(sel) { return document.querySelector(sel); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }
  function safeIcon(url) {
    return typeof url === "string" && /^(https?:|data:image\/)/i.test(url) ? url : null;
  }
  function fmtDuration(s) {
    s = Math.max(0, Math.floor(s));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
    var m = Math.floor(s % 3600 / 60), sec = s % 60;
    return (d ? d + "d " : "") + (d || h ? h + "h " : "") + (d || h || m ? m + "m " : "") + sec + "s";
  }
  function fmtTime(t) {
    if (startedAt === null) { return t.toFixed(3); }
    var d = new Date(startedAt + t * 1000);
    return d.toLocaleTimeString() + "." + String(d.getMilliseconds()).padStart(3, "0");
  }
  function setStats(stats) {
    Object.keys(stats).forEach(function (k) {
      var dd = document.querySelector('[data-counter="' + k + '"]');
      if (dd) { dd.textContent = String(stats[k]); }
    });
  }
  function renderClients(clients) {
    var body = $("#clients tbody");
    body.textContent = "";
    clients.forEach(function (c) {
      var tr = el("tr");
      tr.dataset.id = c.id;
      var icon = el("td", null, "icon");
      var src = safeIcon(c.metadata["samp.icon.url"]);
      if (src) { var img = el("img"); img.src = src; img.alt = ""; img.referrerPolicy = "no-referrer"; icon.appendChild(img); }
      tr.appendChild(icon);
      var name = el("td", c.name, "name");
      tr.appendChild(name);
      tr.appendChild(el("td", c.id + (c.profile !== "standard" ? " (" + c.profile + ")" : ""), "id"));
      var meta = el("td", null, "meta");
      Object.keys(c.metadata).sort().forEach(function (k) {
        if (k === "samp.name" || k === "samp.icon.url") { return; }
        var v = c.metadata[k];
        meta.appendChild(el("div", k + ": " + (typeof v === "string" ? v : JSON.stringify(v))));
      });
      tr.appendChild(meta);
      var subs = Object.keys(c.subscriptions).sort();
      tr.appendChild(el("td", subs.join(" ") || (c.callable ? "none" : "not callable"), "subs"));
      body.appendChild(tr);
    });
  }
  function isHubEvent(e) {
    return ["register", "unregister", "metadata", "subscriptions"].indexOf(e.kind) >= 0 ||
      (e.mtype || "").indexOf("samp.hub.") === 0;
  }
  function who(id, name) { return name && name !== id ? name + " (" + id + ")" : id; }
  function renderLog() {
    var showHub = $("#show-hub-events").checked;
    var body = $("#log tbody");
    body.textContent = "";
    for (var i = log.length - 1; i >= 0; i--) {
      var e = log[i];
      if (!showHub && isHubEvent(e)) { continue; }
      var tr = el("tr");
      tr.dataset.kind = e.kind;
      if (isHubEvent(e)) { tr.className = "hub-event"; }
      if (e.kind === "reply" && e.status !== "samp.ok") { tr.className = "error"; }
      tr.appendChild(el("td", fmtTime(e.t)));
      tr.appendChild(el("td", e.kind + (e.call ? " #" + e.call : "")));
      if (e.client !== undefined) {
        tr.appendChild(el("td", ""));
        tr.appendChild(el("td", who(e.client, e.name)));
        tr.appendChild(el("td", ""));
        tr.appendChild(el("td", e.reason || ""));
        tr.appendChild(el("td", ""));
      } else {
        tr.appendChild(el("td", e.mtype, "mtype"));
        tr.appendChild(el("td", who(e.sender, e.sender_name)));
        tr.appendChild(el("td", who(e.recipient, e.recipient_name)));
        tr.appendChild(el("td", e.kind === "reply" ? e.status + (e.error ? ": " + e.error : "") : ""));
        tr.appendChild(el("td", e.ms !== undefined ? e.ms.toFixed(1) : ""));
      }
      body.appendChild(tr);
    }
  }
  function applyState(s) {
    $("#hub-name").textContent = s.hub.name;
    document.title = s.hub.name + " - SAMP hub status";
    $("#hub-description").textContent = s.hub.description;
    startedAt = Date.now() - s.hub.uptime * 1000;
    $("#uptime").textContent = fmtDuration(s.hub.uptime);
    setStats(s.stats);
    clients = s.clients;
    renderClients(clients);
    log = s.log.slice(-MAX_LOG);
    renderLog();
  }
  function feed(state) {
    var f = $("#feed");
    f.textContent = state;
    f.className = "feed " + (state === "live" ? "live" : "down");
  }
  function connect() {
    var source = new EventSource("/status/events" + q);
    source.addEventListener("state", function (ev) { applyState(JSON.parse(ev.data)); feed("live"); });
    source.addEventListener("client", function (ev) {
      // One client changed ({id, record}) or left (record null).
      var d = JSON.parse(ev.data);
      var i = clients.findIndex(function (c) { return c.id === d.id; });
      if (d.record === null) {
        if (i >= 0) { clients.splice(i, 1); }
      } else if (i >= 0) {
        clients[i] = d.record;
      } else {
        clients.push(d.record);
      }
      renderClients(clients);
    });
    source.addEventListener("log", function (ev) {
      var d = JSON.parse(ev.data);
      log.push(d.entry);
      if (log.length > MAX_LOG) { log.shift(); }
      setStats(d.stats);
      renderLog();
    });
    source.addEventListener("bye", function () { feed("hub stopped"); source.close(); });
    source.onerror = function () { if (source.readyState !== EventSource.OPEN) { feed("reconnecting"); } };
  }
  document.addEventListener("DOMContentLoaded", function () {
    $("#show-hub-events").addEventListener("change", renderLog);
    setInterval(function () {
      if (startedAt !== null) { $("#uptime").textContent = fmtDuration((Date.now() - startedAt) / 1000); }
    }, 1000);
    connect();
  });
})();
