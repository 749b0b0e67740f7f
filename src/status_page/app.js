// The status page's commands and live refresh (inlined into the page by status_page.rs).
// Progressive enhancement: without JavaScript the page is complete for reading and refreshes
// itself with <meta http-equiv="refresh"> (inside <noscript>). With it, this script
//   - enables the Manual Take-Over drop-downs + Go and the Reverse takeover buttons,
//   - asks for the API token once per tab (the #token input, kept in sessionStorage; a
//     prompt() when it is empty), POSTs the command with `Authorization: Bearer`, and shows
//     the refusal reasons from the API's error body (`message` and the `failed` codes),
//   - refreshes the live part of the page (#live) every few seconds by fetching the page
//     again, so a half-typed token or reason is never lost.
// Everything from the server is inserted as already-escaped server HTML or with textContent.
(function () {
  "use strict";
  var TOKEN_KEY = "understudy.token";
  var REFRESH_MS = 4000;

  var live = document.getElementById("live");
  var commands = document.getElementById("commands");
  var tokenInput = document.getElementById("token");
  var reasonInput = document.getElementById("reason");
  var message = document.getElementById("message");
  var updated = document.getElementById("updated");
  if (!live || !commands || !tokenInput || !message || !updated) return;

  var busy = false;
  var held = 0;

  document.documentElement.classList.add("js");
  commands.hidden = false;
  try {
    tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";
  } catch (e) { /* storage disabled: the input still works */ }
  tokenInput.addEventListener("input", function () {
    remember(tokenInput.value.trim());
  });

  function remember(t) {
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* ignore */ }
  }

  function enable(root) {
    root.querySelectorAll("select[data-backup], button[data-op]").forEach(function (el) {
      el.disabled = false;
    });
  }

  function token() {
    var t = tokenInput.value.trim();
    if (!t) {
      t = (window.prompt("API token for " + location.host + " (sent as Authorization: Bearer)") || "").trim();
      tokenInput.value = t;
      remember(t);
    }
    return t;
  }

  // kind: "info" | "ok" | "error"; lines: text lines; codes: failed precondition codes.
  function show(kind, title, lines, codes) {
    message.className = kind;
    message.textContent = "";
    var head = document.createElement("strong");
    head.textContent = title;
    message.appendChild(head);
    (lines || []).forEach(function (line) {
      if (!line) return;
      var p = document.createElement("div");
      p.textContent = line;
      message.appendChild(p);
    });
    if (codes && codes.length) {
      var intro = document.createElement("div");
      intro.textContent = "Failed preconditions:";
      message.appendChild(intro);
      var ul = document.createElement("ul");
      ul.id = "failed";
      codes.forEach(function (code) {
        var li = document.createElement("li");
        var c = document.createElement("code");
        c.textContent = code;
        li.appendChild(c);
        ul.appendChild(li);
      });
      message.appendChild(ul);
    }
  }

  async function command(path, body, label) {
    if (busy) return;
    var t = token();
    if (!t) {
      show("error", label + ": not sent", ["An API token is needed for commands."]);
      return;
    }
    var reason = reasonInput ? reasonInput.value.trim() : "";
    if (reason) body.reason = reason;
    busy = true;
    show("info", label + ": sent, waiting for the agent…");
    try {
      var resp = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + t },
        body: JSON.stringify(body),
        cache: "no-store"
      });
      var data = null;
      try { data = await resp.json(); } catch (e) { /* not JSON */ }
      if (resp.ok) {
        show("ok", label + ": done.", [data && data.message]);
        if (reasonInput) reasonInput.value = "";
      } else {
        if (resp.status === 401) {
          tokenInput.value = "";
          remember("");
        }
        var code = data && data.error ? " " + data.error : "";
        show("error", label + ": refused (HTTP " + resp.status + code + ").",
          [data && data.message], data && data.failed);
      }
    } catch (e) {
      show("error", label + ": the agent could not be reached.", [String(e)]);
    } finally {
      busy = false;
      await refresh(true);
    }
  }

  live.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-op]");
    if (!b || b.disabled) return;
    if (b.dataset.op === "takeover") {
      var backup = b.dataset.backup;
      var select = live.querySelector('select[data-backup="' + CSS.escape(backup) + '"]');
      if (!select || !select.value) return;
      command("/api/v1/takeover", { backup: backup, main: select.value },
        "Manual takeover of " + select.value + " by " + backup);
    } else if (b.dataset.op === "reverse") {
      command("/api/v1/reverse-takeover", { main: b.dataset.main },
        "Reverse takeover of " + b.dataset.main);
    }
  });

  // Do not swap the table under an operator who is choosing in a drop-down (for a while).
  function hold() {
    var a = document.activeElement;
    if (a && a.tagName === "SELECT" && live.contains(a) && held < 5) {
      held += 1;
      return true;
    }
    held = 0;
    return false;
  }

  async function refresh(force) {
    if (!force && (busy || hold())) return;
    try {
      var resp = await fetch(location.pathname, { cache: "no-store", headers: { "Accept": "text/html" } });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      var doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      var fresh = doc.getElementById("live");
      if (!fresh) throw new Error("unexpected page");
      var chosen = {};
      live.querySelectorAll("select[data-backup]").forEach(function (s) {
        chosen[s.dataset.backup] = s.value;
      });
      live.innerHTML = fresh.innerHTML;
      live.querySelectorAll("select[data-backup]").forEach(function (s) {
        var v = chosen[s.dataset.backup];
        if (v && Array.prototype.some.call(s.options, function (o) { return o.value === v; })) s.value = v;
      });
      enable(live);
      document.title = doc.title;
      updated.className = "";
      updated.textContent = "updated " + new Date().toLocaleTimeString();
    } catch (e) {
      updated.className = "stale";
      updated.textContent = "unable to retrieve data from this agent (" + e.message + "), retrying";
    }
  }

  enable(live);
  updated.textContent = "updated " + new Date().toLocaleTimeString() + ", every " + REFRESH_MS / 1000 + " s";
  (function loop() {
    setTimeout(async function () {
      await refresh(false);
      loop();
    }, REFRESH_MS);
  })();
})();
