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
 */
(function (root) {
  "use strict";

  var DEFAULT_HUB = "http://127.0.0.1:21012/";

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
      var err = new Error(info.faultString || "SAMP hub fault");
      err.faultCode = info.faultCode;
      throw err;
    }
    var value = doc.getElementsByTagName("value")[0];
    return value ? decodeValue(value) : "";
  }

  function rpc(url, method, params, signal) {
    return fetch(url, {
      method: "POST",
      headers: {"Content-Type": "text/xml"},
      body: encodeCall(method, params),
      signal: signal,
      cache: "no-store",
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("SAMP hub answered HTTP " + response.status);
      }
      return response.text();
    }).then(decodeResponse);
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
   * (the user may first have to allow the page on the hub's side), or
   * rejects with the hub's refusal.
   */
  function connect(options) {
    var url = options.hubUrl || DEFAULT_HUB;
    var identity = {"samp.name": options.name};
    var conn;
    return rpc(url, "samp.webhub.register", [identity]).then(function (registration) {
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

  var api = {connect: connect, ping: ping, Connection: Connection,
             encodeCall: encodeCall, decodeResponse: decodeResponse,
             DEFAULT_HUB: DEFAULT_HUB};
  if (typeof module === "object" && module.exports) { module.exports = api; }
  else { root.SampTwist = api; }
})(typeof self !== "undefined" ? self : this);
