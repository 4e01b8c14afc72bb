// The cashier's behaviour in the payer's browser: start an attempt, follow its next action, poll
// the payment's status and show the outcome. It never computes with amounts: every amount on the
// page was formatted by the server. It talks only to this payment's own /checkout URLs.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("cashier-data").textContent);
  var text = data.text;
  var POLL_INTERVAL_MS = 1500;
  var POLL_INTERVAL_SLOW_MS = 5000;
  var POLL_SLOW_AFTER_MS = 120000;
  var pollTimer = null;
  var pollStartedAt = 0;
  var finished = false;

  var $ = function (id) { return document.getElementById(id); };
  var paySection = $("pay-section");
  var waitingSection = $("waiting-section");
  var doneSection = $("done-section");
  var form = $("pay-form");
  var payButton = $("pay-button");
  var payLabel = $("pay-label");

  function show(section) {
    [paySection, waitingSection, doneSection].forEach(function (s) { if (s) s.hidden = s !== section; });
  }

  function safeUrl(value) {
    if (typeof value !== "string") return null;
    try {
      var url = new URL(value);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function failureText(code) {
    return Object.prototype.hasOwnProperty.call(data.failureText, code) ? data.failureText[code] : data.failureText["default"];
  }

  function showNotice(message) {
    var notice = $("notice");
    if (!notice) return;
    $("notice-text").textContent = message;
    notice.hidden = false;
  }

  function showPay(failureCode) {
    if (!paySection) return;
    stopPolling();
    if (failureCode) {
      showNotice(failureText(failureCode));
      payLabel.textContent = text.payAgain;
    }
    payButton.disabled = false;
    show(paySection);
  }

  function showWaiting(nextAction) {
    var qr = $("qr");
    if (nextAction && nextAction.type === "qr_code" && (nextAction.qr || nextAction.url)) {
      var code = nextAction.qr || nextAction.url;
      $("waiting-title").textContent = text.qrTitle;
      $("qr-text").textContent = code;
      var link = $("qr-link");
      var href = safeUrl(nextAction.url) || safeUrl(nextAction.qr);
      if (href) { link.href = href; link.hidden = false; } else { link.hidden = true; link.removeAttribute("href"); }
      qr.hidden = false;
    } else {
      $("waiting-title").textContent = text.waitingTitle;
      qr.hidden = true;
    }
    show(waitingSection);
    startPolling();
  }

  function showDone(kind, title, detail) {
    finished = true;
    stopPolling();
    // A finished payment cannot be paid again: the form leaves the page, not just the view.
    if (paySection) { paySection.remove(); paySection = null; }
    $("done-icon").setAttribute("data-kind", kind);
    $("done-title").textContent = title;
    $("done-detail").textContent = detail;
    show(doneSection);
  }

  function startAutoReturn() {
    var target = safeUrl(data.returnUrl);
    if (!target) return;
    var seconds = data.autoReturnSeconds;
    var countdown = $("countdown");
    var tick = function () {
      countdown.textContent = text.returningIn.replace("{seconds}", String(seconds));
      countdown.hidden = false;
      if (seconds <= 0) { window.location.assign(target); return; }
      seconds -= 1;
      window.setTimeout(tick, 1000);
    };
    tick();
  }

  function applyStatus(status, failure, latestAttempt, live) {
    switch (status) {
      case "succeeded":
      case "requires_capture":
        if (!finished) {
          showDone("success", text.succeededTitle, text.succeededDetail);
          if (live) startAutoReturn();
        }
        return;
      case "canceled":
        showDone("closed", text.canceledTitle, text.canceledDetail);
        return;
      case "expired":
        showDone("closed", text.expiredTitle, text.expiredDetail);
        return;
      case "failed":
        showPay(failure ? failure.code : "default");
        return;
      case "processing":
        showWaiting(latestAttempt ? latestAttempt.next_action : null);
        return;
      default:
        showPay(null);
    }
  }

  function stopPolling() {
    if (pollTimer !== null) { window.clearTimeout(pollTimer); pollTimer = null; }
  }

  function startPolling() {
    if (pollTimer !== null || finished) return;
    pollStartedAt = Date.now();
    schedulePoll();
  }

  function schedulePoll() {
    var slow = Date.now() - pollStartedAt > POLL_SLOW_AFTER_MS;
    pollTimer = window.setTimeout(poll, slow ? POLL_INTERVAL_SLOW_MS : POLL_INTERVAL_MS);
  }

  function poll() {
    pollTimer = null;
    fetch(data.statusUrl, { headers: { accept: "application/json" }, cache: "no-store", credentials: "omit" })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (body) {
        if (body && body.status !== "processing") { applyStatus(body.status, body.failure, body.latest_attempt, true); return; }
        if (!finished) schedulePoll();
      })
      .catch(function () { if (!finished) schedulePoll(); });
  }

  function refresh() {
    return fetch(data.statusUrl, { headers: { accept: "application/json" }, cache: "no-store", credentials: "omit" })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (body) {
        if (body) applyStatus(body.status, body.failure, body.latest_attempt, true);
        else showWaiting(null);
      })
      // The outcome is recorded on the server; polling finds it once the network is back.
      .catch(function () { showWaiting(null); });
  }

  function chosen(name) {
    var input = form.querySelector('input[name="' + name + '"]:checked');
    return input ? input.value : null;
  }

  function syncOptions() {
    var method = chosen("method");
    form.querySelectorAll("[data-for]").forEach(function (el) { el.hidden = el.getAttribute("data-for") !== method; });
  }

  function submit(event) {
    event.preventDefault();
    if (payButton.disabled) return;
    var method = chosen("method");
    if (!method) return;
    var body = { method: method };
    if (method === "alipay") {
      var periods = chosen("installments");
      if (periods) body.installments = parseInt(periods, 10);
    }
    if (method === "simulator") {
      var outcome = $("sandbox-outcome");
      if (outcome) body.simulator = { outcome: outcome.value };
    }
    payButton.disabled = true;
    payLabel.textContent = text.paying;
    $("notice").hidden = true;
    fetch(data.attemptsUrl, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    })
      .then(function (res) {
        return res.json().then(function (json) { return { status: res.status, json: json }; }, function () { return { status: res.status, json: null }; });
      })
      .then(function (answer) {
        payLabel.textContent = text.pay;
        if (answer.status === 201 || answer.status === 200) { followAttempt(answer.json); return; }
        var code = answer.json && answer.json.error ? answer.json.error.code : null;
        if (code === "attempt_in_progress") { showWaiting(null); return; }
        if (code === "invalid_state_transition" || code === "not_found") { refresh(); return; }
        payButton.disabled = false;
        showNotice(code === "method_not_allowed" ? text.methodNotAllowed : code === "no_available_channel" || code === "unavailable" ? text.noChannel : failureText("default"));
      })
      .catch(function () {
        payButton.disabled = false;
        payLabel.textContent = text.pay;
        showNotice(text.networkError);
      });
  }

  function followAttempt(attempt) {
    var action = attempt.next_action || { type: "none" };
    if (attempt.status === "succeeded" || attempt.status === "failed") { refresh(); return; }
    if (action.type === "redirect") {
      var target = safeUrl(action.url);
      if (target) {
        $("waiting-title").textContent = text.redirecting;
        show(waitingSection);
        window.location.assign(target);
        return;
      }
    }
    showWaiting(action);
  }

  if (form) {
    form.addEventListener("submit", submit);
    form.addEventListener("change", syncOptions);
    syncOptions();
  }
  applyStatus(data.status, data.failure, data.latestAttempt, false);
})();
