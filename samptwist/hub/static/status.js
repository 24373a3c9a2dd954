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
  var token = "";        // page token: consent answers must carry it
  var consentShown = {}; // request id -> local deadline (ms)

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
  // -- Web Profile consent ---------------------------------------------------
  function showConsentError(text) {
    var p = $("#consent-error");
    p.textContent = text || "";
    p.hidden = !text;
  }
  function post(body) {
    showConsentError("");
    return fetch("/status/consent" + q, {
      method: "POST", cache: "no-store", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-SAMP-Status-Token": token},
      body: JSON.stringify(body),
    }).then(function (r) {
      return r.text().then(function (text) {
        if (!r.ok) {
          var why = text;
          try { why = JSON.parse(text).error || text; } catch (e) { /* plain text */ }
          throw new Error(why);
        }
      });
    }).catch(function (e) { showConsentError("Could not answer: " + e.message); });
  }
  function timeLeft(id) {
    var left = Math.max(0, Math.round((consentShown[id] - Date.now()) / 1000));
    return left + " s";
  }
  function field(dl, label, value, cls) {
    dl.appendChild(el("dt", label));
    dl.appendChild(el("dd", value, cls));
  }
  function renderConsent(c) {
    var box = $("#consent-requests");
    box.textContent = "";
    var seen = {};
    (c.pending || []).forEach(function (r) {
      seen[r.id] = true;
      if (!(r.id in consentShown)) { consentShown[r.id] = Date.now() + r.time_left * 1000; }
      var div = el("div", null, "request");
      div.dataset.id = r.id;
      var dl = el("dl");
      field(dl, "page says its name is", r.name, "claimed-name");
      field(dl, "origin (as received)", r.origin === null ? "(none)" : r.origin, "origin");
      if (!r.origin_known) {
        field(dl, "", "unknown origin: no Origin header, 'null', or not http/https", "warning");
      }
      field(dl, "referring page", r.referer === null ? "(none)" : r.referer, "referer");
      if (r.referer_mismatch) {
        field(dl, "", "the referring page does not match the origin", "warning");
      }
      field(dl, "refused automatically in", timeLeft(r.id), "time-left");
      div.appendChild(dl);
      function button(label, cls, action) {
        var b = el("button", label, cls);
        b.type = "button";
        b.dataset.action = action;
        b.addEventListener("click", function () { post({action: action, id: r.id}); });
        div.appendChild(b);
      }
      button("Allow once", "allow", "allow");
      button("Deny", "deny", "deny");
      if (r.can_remember) { button("Always allow this origin", "always", "always"); }
      box.appendChild(div);
    });
    Object.keys(consentShown).forEach(function (id) { if (!seen[id]) { delete consentShown[id]; } });
    $("#consent").hidden = !(c.pending && c.pending.length);
    $("#consent-mode").textContent = "Web Profile consent: " + c.mode;
    var body = $("#origins tbody");
    body.textContent = "";
    (c.origins || []).forEach(function (o) {
      var tr = el("tr");
      tr.dataset.origin = o.origin;
      tr.appendChild(el("td", o.origin, "origin"));
      tr.appendChild(el("td", o.name));
      tr.appendChild(el("td", o.since));
      var td = el("td");
      var b = el("button", "Revoke", "revoke");
      b.type = "button";
      b.addEventListener("click", function () { post({action: "forget", origin: o.origin}); });
      td.appendChild(b);
      tr.appendChild(td);
      body.appendChild(tr);
    });
    $("#web-origins").hidden = !c.asks;
    document.title = (c.pending && c.pending.length ? "(" + c.pending.length + " asking) " : "") +
      document.title.replace(/^\(\d+ asking\) /, "");
  }
  function tickConsent() {
    document.querySelectorAll("#consent-requests .request").forEach(function (div) {
      var dd = div.querySelector(".time-left");
      if (dd && div.dataset.id in consentShown) { dd.textContent = timeLeft(div.dataset.id); }
    });
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
    if (s.token) { token = s.token; }
    if (s.consent) { renderConsent(s.consent); }
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
    source.addEventListener("stats", function (ev) { setStats(JSON.parse(ev.data)); });
    source.addEventListener("consent", function (ev) { renderConsent(JSON.parse(ev.data)); });
    source.addEventListener("bye", function () { feed("hub stopped"); source.close(); });
    source.onerror = function () { if (source.readyState !== EventSource.OPEN) { feed("reconnecting"); } };
  }
  document.addEventListener("DOMContentLoaded", function () {
    $("#show-hub-events").addEventListener("change", renderLog);
    setInterval(function () {
      if (startedAt !== null) { $("#uptime").textContent = fmtDuration((Date.now() - startedAt) / 1000); }
      tickConsent();
    }, 1000);
    connect();
  });
})();
