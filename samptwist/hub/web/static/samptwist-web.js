/*
 * samptwist-web.js: a small SAMP Web Profile client for web pages.
 *
 * Part of samptwist (BSD-3-Clause).  Served by the samptwist hub at
 * http://127.0.0.1:21012/samptwist-web.js; you may also copy it next to
 * your page.  No dependencies; works in current browsers as a classic
 * <script> (defines window.SampTwist) or as a CommonJS module.
 *
 *   const conn = await SampTwist.connect({
 *     name: "My page",                       // samp.name (required)
 *     metadata: {"samp.description.text": "..."},
 *     handlers: {                            // MType -> handler
 *       "table.load.votable": (senderId, params, message, msgId) => ({}),
 *     },
 *     onDisconnect: (reason) => {},          // hub went away or ejected us
 *   });
 *   await conn.notifyAll({"samp.mtype": "table.load.votable",
 *                         "samp.params": {"url": "https://..."}});
 *   const response = await conn.callAndWait(id, message, 10);
 *   const readable = conn.translate(url);    // URL to fetch() through the hub
 *   await conn.close();                      // unregister
 *
 * A handler's return value (an object, or a Promise of one) becomes the
 * samp.result of a samp.ok reply to a call; a thrown error becomes a
 * samp.error reply.  Only strings, arrays and plain objects are SAMP values:
 * encode numbers as strings.
 *
 * Failures reject with a SampTwist.SampError whose `kind` says why:
 *   "no-hub"       nothing answers at hubUrl (no hub, or no Web Profile)
 *   "lna-blocked"  the browser's Local Network Access check blocked the
 *                  request (Chromium 142+: a page that is not on this
 *                  machine must be https, and the user must allow "local
 *                  network access" for the site)
 *   "refused"      the hub's user (or its consent policy) said no
 *   "timeout"      no answer in time (connect's `timeout` option, in
 *                  seconds, or nobody answered the hub's consent question)
 *   "hub-error"    any other error the hub reported
 * SampTwist.renderError(error, element) explains it to the page's user;
 * SampTwist.diagnose(hubUrl) checks reachability without registering.
 *
 * Requests use fetch's targetAddressSpace: "loopback" (Chromium's Local
 * Network Access), so a public https page gets the browser's permission
 * prompt instead of a silent failure.  Such a page must serve this file
 * itself: loading it from 127.0.0.1 is subject to the same check.
 */
(function (root) {
  "use strict";

  var DEFAULT_HUB = "http://127.0.0.1:21012/";

  // -- errors -------------------------------------------------------------

  /** An error with a `kind` (see above), a message and `details`. */
  function SampError(kind, message, details) {
    var e = new Error(message);
    e.name = "SampError";
    e.kind = kind;
    e.details = details || {};
    Object.setPrototypeOf(e, SampError.prototype);
    return e;
  }
  SampError.prototype = Object.create(Error.prototype);
  SampError.prototype.constructor = SampError;

  function isLoopbackHost(host) {
    host = String(host || "").replace(/^\[|\]$/g, "").toLowerCase();
    return host === "localhost" || /\.localhost$/.test(host) || host === "::1" ||
      /^127\.\d+\.\d+\.\d+$/.test(host);
  }

  function pageOrigin() {
    return typeof location !== "undefined" ? location.origin : "";
  }

  function pageIsLoopback() {
    return typeof location === "undefined" || location.protocol === "file:" ||
      isLoopbackHost(location.hostname);
  }

  /** Resolves with the page's local-network permission: granted, prompt,
   *  denied or unknown. */
  function localNetworkPermission() {
    var perms = typeof navigator !== "undefined" && navigator.permissions;
    if (!perms || !perms.query) { return Promise.resolve("unknown"); }
    var names = ["loopback-network", "local-network-access", "local-network"];
    function next(i) {
      if (i >= names.length) { return Promise.resolve("unknown"); }
      return perms.query({name: names[i]}).then(function (status) { return status.state; },
                                                 function () { return next(i + 1); });
    }
    return next(0);
  }

  /** A fetch that failed without an HTTP answer: say why, as well as the
   *  page can know it (the browser gives the same TypeError for both). */
  function networkError(url, cause) {
    var details = {hubUrl: url, pageOrigin: pageOrigin(), cause: String(cause && cause.message || cause)};
    if (pageIsLoopback()) {
      return Promise.resolve(SampError("no-hub", "No SAMP hub with a Web Profile answers at " +
                                       url, details));
    }
    if (typeof isSecureContext !== "undefined" && !isSecureContext) {
      details.secureContext = false;
      return Promise.resolve(SampError("lna-blocked",
        "The browser blocks this page (not https) from reaching the SAMP hub on this machine",
        details));
    }
    return localNetworkPermission().then(function (state) {
      details.permission = state;
      if (state === "granted") {
        return SampError("no-hub", "No SAMP hub with a Web Profile answers at " + url, details);
      }
      return SampError("lna-blocked", state === "denied" ?
        "The browser's local network access is denied for this site" :
        "The browser has not allowed this site to reach the SAMP hub on this machine " +
        "(local network access)", details);
    });
  }

  // -- XML-RPC ------------------------------------------------------------

  function escapeXml(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;")
      .replace(/>/g, "&gt;");
  }

  function encodeValue(value) {
    if (typeof value === "string") {
      return "<value><string>" + escapeXml(value) + "</string></value>";
    }
    if (Array.isArray(value)) {
      return "<value><array><data>" + value.map(encodeValue).join("") +
        "</data></array></value>";
    }
    if (value !== null && typeof value === "object") {
      var members = Object.keys(value).map(function (key) {
        return "<member><name>" + escapeXml(key) + "</name>" +
          encodeValue(value[key]) + "</member>";
      });
      return "<value><struct>" + members.join("") + "</struct></value>";
    }
    if (typeof value === "number" || typeof value === "boolean") {
      throw new TypeError("SAMP values are strings, arrays and objects; " +
                          "encode " + value + " as a string");
    }
    throw new TypeError("not a SAMP value: " + value);
  }

  function encodeCall(method, params) {
    return "<?xml version=\"1.0\"?><methodCall><methodName>" + method +
      "</methodName><params>" + params.map(function (p) {
        return "<param>" + encodeValue(p) + "</param>";
      }).join("") + "</params></methodCall>";
  }

  function children(node) {
    var out = [];
    for (var c = node.firstChild; c; c = c.nextSibling) {
      if (c.nodeType === 1) { out.push(c); }
    }
    return out;
  }

  function decodeValue(valueNode) {
    var kids = children(valueNode);
    if (kids.length === 0) { return valueNode.textContent; }
    var node = kids[0];
    switch (node.localName) {
      case "array":
        return children(children(node)[0] || node).map(decodeValue);
      case "struct":
        var map = {};
        children(node).forEach(function (member) {
          var name = null, value = "";
          children(member).forEach(function (part) {
            if (part.localName === "name") { name = part.textContent; }
            if (part.localName === "value") { value = decodeValue(part); }
          });
          if (name !== null) { map[name] = value; }
        });
        return map;
      default:  // string, and leniently int/i4/double/boolean as text
        return node.textContent;
    }
  }

  function decodeResponse(text) {
    var doc = new DOMParser().parseFromString(text, "text/xml");
    if (doc.getElementsByTagName("parsererror").length) {
      throw new Error("hub answer is not XML-RPC");
    }
    var fault = doc.getElementsByTagName("fault")[0];
    if (fault) {
      var info = decodeValue(children(fault)[0]);
      var err = SampError("hub-error", info.faultString || "SAMP hub fault",
                          {fault: info.faultString});
      err.faultCode = info.faultCode;
      throw err;
    }
    var value = doc.getElementsByTagName("value")[0];
    return value ? decodeValue(value) : "";
  }

  function rpc(url, method, params, signal) {
    var init = {
      method: "POST",
      headers: {"Content-Type": "text/xml"},
      body: encodeCall(method, params),
      signal: signal,
      cache: "no-store",
    };
    var host = "";
    try { host = new URL(url, pageOrigin() || undefined).hostname; } catch (e) { /* relative */ }
    if (isLoopbackHost(host)) { init.targetAddressSpace = "loopback"; }
    return fetch(url, init).then(function (response) {
      if (!response.ok) {
        throw SampError(response.status === 403 || response.status === 421 ? "refused" : "hub-error",
                        "SAMP hub answered HTTP " + response.status, {status: response.status});
      }
      return response.text();
    }, function (e) {
      if (e && e.name === "AbortError") { throw e; }
      return networkError(url, e).then(function (err) { throw err; });
    }).then(decodeResponse);
  }

  /** Turn a fault of register() into the error kind it means. */
  function registerError(e) {
    if (!e || e.faultCode === undefined) { return e; }
    var text = e.message || "";
    if (/no answer in time/i.test(text)) {
      return SampError("timeout", "Nobody answered the hub's question in time; the hub " +
                       "refused this page", {fault: text});
    }
    if (/refused|not allow/i.test(text)) {
      return SampError("refused", text, {fault: text});
    }
    return SampError("hub-error", text, {fault: text});
  }

  // -- the connection -------------------------------------------------------

  function Connection(options, registration) {
    this.hubUrl = options.hubUrl || DEFAULT_HUB;
    this.privateKey = registration["samp.private-key"];
    this.selfId = registration["samp.self-id"];
    this.hubId = registration["samp.hub-id"];
    this.translator = registration["samp.url-translator"];
    this.handlers = Object.assign({"samp.app.ping": function () { return {}; }},
                                  options.handlers || {});
    this.onDisconnect = options.onDisconnect || function () {};
    this.onError = options.onError || function (e) { console.warn(e); };
    this.pollTimeout = String(options.pollTimeout || 60);
    this.connected = true;
    this._tag = 0;
    this._waiting = {};
    this._abort = typeof AbortController === "function" ? new AbortController() : null;
  }

  Connection.prototype.hub = function (method) {
    if (!this.connected) { return Promise.reject(new Error("not connected")); }
    var args = [this.privateKey].concat(Array.prototype.slice.call(arguments, 1));
    return rpc(this.hubUrl, "samp.webhub." + method, args);
  };

  Connection.prototype.declareMetadata = function (m) { return this.hub("declareMetadata", m); };
  Connection.prototype.declareSubscriptions = function (s) {
    return this.hub("declareSubscriptions", s);
  };
  Connection.prototype.getRegisteredClients = function () {
    return this.hub("getRegisteredClients");
  };
  Connection.prototype.getMetadata = function (id) { return this.hub("getMetadata", id); };
  Connection.prototype.getSubscriptions = function (id) { return this.hub("getSubscriptions", id); };
  Connection.prototype.getSubscribedClients = function (mtype) {
    return this.hub("getSubscribedClients", mtype);
  };
  Connection.prototype.notify = function (id, message) { return this.hub("notify", id, message); };
  Connection.prototype.notifyAll = function (message) { return this.hub("notifyAll", message); };
  Connection.prototype.callAndWait = function (id, message, timeout) {
    return this.hub("callAndWait", id, message, String(timeout || 0));
  };
  Connection.prototype.reply = function (msgId, response) {
    return this.hub("reply", msgId, response);
  };

  /** Asynchronous call; resolves with the response map when it arrives. */
  Connection.prototype.call = function (id, message) {
    var self = this, tag = "st-" + (++this._tag);
    var answer = new Promise(function (resolve) { self._waiting[tag] = resolve; });
    return this.hub("call", id, tag, message).then(function () { return answer; },
      function (e) { delete self._waiting[tag]; throw e; });
  };

  /** URL through which the page may fetch url (if the hub allows it). */
  Connection.prototype.translate = function (url) {
    return this.translator + encodeURIComponent(url);
  };

  Connection.prototype.close = function () {
    if (!this.connected) { return Promise.resolve(); }
    var done = this.hub("unregister");
    this._stop();
    return done;
  };

  Connection.prototype._stop = function (reason) {
    var wasConnected = this.connected;
    this.connected = false;
    if (this._abort) { this._abort.abort(); }
    if (wasConnected && reason !== undefined) { this.onDisconnect(reason); }
  };

  Connection.prototype._poll = function () {
    var self = this;
    if (!this.connected) { return; }
    rpc(this.hubUrl, "samp.webhub.pullCallbacks", [this.privateKey, this.pollTimeout],
        this._abort ? this._abort.signal : undefined)
      .then(function (callbacks) {
        (callbacks || []).forEach(function (cb) {
          try { self._dispatch(cb["samp.methodName"], cb["samp.params"] || []); }
          catch (e) { self.onError(e); }
        });
        self._poll();
      }, function (e) {
        if (!self.connected) { return; }
        self._stop("lost contact with the hub: " + e.message);
      });
  };

  Connection.prototype._dispatch = function (method, params) {
    var self = this;
    if (method === "receiveResponse") {
      var resolve = this._waiting[params[1]];
      delete this._waiting[params[1]];
      if (resolve) { resolve(params[2]); }
      return;
    }
    var sender = params[0];
    var msgId = method === "receiveCall" ? params[1] : null;
    var message = method === "receiveCall" ? params[2] : params[1];
    var mtype = message["samp.mtype"];
    if (mtype === "samp.hub.disconnect" || mtype === "samp.hub.event.shutdown") {
      var why = (message["samp.params"] || {}).reason || mtype;
      this._stop(why);
      return;
    }
    var handler = this.handlers[mtype];
    var result = new Promise(function (resolve) {
      if (!handler) { throw new Error("no handler for " + mtype); }
      resolve(handler(sender, message["samp.params"] || {}, message, msgId));
    });
    if (msgId === null) { result.catch(this.onError); return; }
    result.then(function (value) {
      return self.reply(msgId, {"samp.status": "samp.ok", "samp.result": value || {}});
    }, function (e) {
      return self.reply(msgId, {"samp.status": "samp.error",
                                "samp.error": {"samp.errortxt": String(e && e.message || e)}});
    }).catch(this.onError);
  };

  /**
   * Register with the hub.  Resolves with a Connection once registered
   * (the user may first have to allow the page on the hub's status page),
   * or rejects with a SampError.  options.timeout: seconds to wait for the
   * registration (default: as long as the hub waits for its user).
   */
  function connect(options) {
    var url = options.hubUrl || DEFAULT_HUB;
    var identity = {"samp.name": options.name};
    var conn;
    var abort = typeof AbortController === "function" ? new AbortController() : null;
    var timer = null, timedOut = false;
    if (options.timeout && abort) {
      timer = setTimeout(function () { timedOut = true; abort.abort(); },
                         Number(options.timeout) * 1000);
    }
    var registered = rpc(url, "samp.webhub.register", [identity], abort ? abort.signal : undefined)
      .then(function (registration) {
        if (timer !== null) { clearTimeout(timer); }
        return registration;
      }, function (e) {
        if (timer !== null) { clearTimeout(timer); }
        if (timedOut) {
          throw SampError("timeout", "No answer from the SAMP hub within " + options.timeout +
                          " s", {hubUrl: url});
        }
        throw registerError(e);
      });
    return registered.then(function (registration) {
      conn = new Connection(options, registration);
      var metadata = Object.assign({"samp.name": options.name}, options.metadata || {});
      return conn.declareMetadata(metadata);
    }).then(function () {
      return conn.hub("allowReverseCallbacks", "1");
    }).then(function () {
      var subs = {"samp.hub.disconnect": {}, "samp.hub.event.shutdown": {}};
      Object.keys(conn.handlers).forEach(function (m) { subs[m] = {}; });
      return conn.declareSubscriptions(subs);
    }).then(function () {
      conn._poll();
      return conn;
    });
  }

  /** Resolves true if a Web Profile hub answers at hubUrl. */
  function ping(hubUrl) {
    return rpc(hubUrl || DEFAULT_HUB, "samp.webhub.ping", []).then(
      function () { return true; }, function () { return false; });
  }

  /** Resolves with {ok: true} if a Web Profile hub answers at hubUrl, else
   *  {ok: false, error: SampError} (no-hub or lna-blocked); never rejects. */
  function diagnose(hubUrl) {
    return rpc(hubUrl || DEFAULT_HUB, "samp.webhub.ping", []).then(
      function () { return {ok: true}; },
      function (e) { return {ok: false, error: e}; });
  }

  var ADVICE = {
    "no-hub": ["SAMP is not running, or its hub has no Web Profile.",
               "Start a SAMP hub on this computer (for example TOPCAT, or 'samptwist hub'), " +
               "then try again. 'samptwist doctor' explains what is missing."],
    "lna-blocked": ["Your browser did not let this page talk to SAMP on your computer.",
                    "Allow \"local network access\" (or \"apps on this device\") for this site: " +
                    "click the icon at the left of the address bar, then reload. Pages that " +
                    "are not https cannot be allowed."],
    "refused": ["The SAMP hub refused this page.",
                "If you want this page to use SAMP, reload it and choose Allow on the hub's " +
                "status page ('samptwist clients --status-url' prints its address)."],
    "timeout": ["Nobody allowed this page in time.",
                "Open the hub's status page ('samptwist clients --status-url'), reload this page " +
                "and choose Allow while it asks."],
    "hub-error": ["The SAMP hub reported an error.", ""],
  };

  /** {kind, title, advice, message} describing error for the page's user. */
  function describeError(error) {
    var kind = error && error.kind in ADVICE ? error.kind : "hub-error";
    var advice = ADVICE[kind];
    return {kind: kind, title: advice[0], advice: advice[1],
            message: String(error && error.message || error)};
  }

  /** Show describeError(error) in element (as text; never as HTML);
   *  returns the text shown. */
  function renderError(error, element) {
    var d = describeError(error);
    var text = d.title + (d.advice ? " " + d.advice : "") + " (" + d.message + ")";
    if (element && typeof document !== "undefined") {
      element.textContent = "";
      var title = document.createElement("strong");
      title.textContent = d.title;
      element.appendChild(title);
      if (d.advice) { element.appendChild(document.createTextNode(" " + d.advice)); }
      var detail = document.createElement("small");
      detail.textContent = " (" + d.message + ")";
      element.appendChild(detail);
      element.dataset.sampError = d.kind;
    }
    return text;
  }

  var api = {connect: connect, ping: ping, diagnose: diagnose, Connection: Connection,
             SampError: SampError, describeError: describeError, renderError: renderError,
             encodeCall: encodeCall, decodeResponse: decodeResponse,
             DEFAULT_HUB: DEFAULT_HUB};
  if (typeof module === "object" && module.exports) { module.exports = api; }
  else { root.SampTwist = api; }
})(typeof self !== "undefined" ? self : this);
