/* The status page's only script (no inline script anywhere, so a strict
 * Content-Security-Policy can be added). Everything works without it; it adds:
 *
 * 1. the viewer's local time beside every UTC time (<time class="utc">);
 * 2. keyboard use of the uptime bars: one Tab stop per bar, arrow keys move between
 *    days, Escape hides a tooltip, a click/tap pins it (so its links can be tapped);
 * 3. live updates on the status page: polls /api/v2/summary.json with If-None-Match
 *    every 30-60 s (jittered, paused while the tab is hidden, backing off quietly on
 *    errors or 404), and when it changed, fetches / and swaps only the regions marked
 *    data-live, keeping the reader's scroll position, focus and open <details>.
 */
(function () {
  "use strict";

  var SUMMARY_URL = "/api/v2/summary.json";
  var PAGE_URL = "/";
  var POLL_MIN = 30000;
  var POLL_MAX = 60000;
  var FIRST_POLL_MIN = 5000;
  var FIRST_POLL_MAX = 15000;
  var BACKOFF_START = 120000;
  var BACKOFF_MAX = 600000;

  // --- 1. Local times --------------------------------------------------------------

  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    zone = "";
  }

  function localText(date, style) {
    var options = { hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
    if (style !== "time") {
      options.month = "short";
      options.day = "numeric";
    }
    return date.toLocaleString(undefined, options);
  }

  function localizeTimes(root) {
    if (!zone || zone === "UTC" || zone === "Etc/UTC") {
      return;
    }
    var times = root.querySelectorAll("time.utc[datetime]");
    for (var i = 0; i < times.length; i++) {
      var el = times[i];
      if (el.getAttribute("data-localized")) {
        continue;
      }
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) {
        continue;
      }
      el.setAttribute("data-localized", "1");
      var local = document.createElement("span");
      local.className = "local";
      local.textContent = " (" + localText(date, el.getAttribute("data-style")) + " your time)";
      el.insertAdjacentElement("afterend", local);
    }
  }

  // --- 2. Uptime bars ----------------------------------------------------------------

  function dayOf(el) {
    return el && el.closest ? el.closest(".day") : null;
  }

  function closeTips(except) {
    var open = document.querySelectorAll(".day.tip-open");
    for (var i = 0; i < open.length; i++) {
      if (open[i] !== except) {
        open[i].classList.remove("tip-open");
      }
    }
  }

  function visibleButtons(bars) {
    var all = bars.querySelectorAll(".day > .bar");
    var shown = [];
    for (var i = 0; i < all.length; i++) {
      if (all[i].offsetParent !== null || all[i] === document.activeElement) {
        shown.push(all[i]);
      }
    }
    return shown.length ? shown : Array.prototype.slice.call(all);
  }

  function setRoving(bars, current) {
    var buttons = bars.querySelectorAll(".day > .bar");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].tabIndex = buttons[i] === current ? 0 : -1;
    }
  }

  function enhanceBars(root, keep) {
    var rows = root.querySelectorAll("ol.bars");
    for (var i = 0; i < rows.length; i++) {
      var bars = rows[i];
      var buttons = bars.querySelectorAll(".day > .bar");
      if (!buttons.length) {
        continue;
      }
      var current = (keep && keep[bars.id]) ? document.getElementById(keep[bars.id]) : null;
      if (!current || !bars.contains(current)) {
        current = buttons[buttons.length - 1]; // today
      }
      setRoving(bars, current);
    }
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key === "Escape") {
      var day = dayOf(target);
      if (day) {
        day.classList.remove("tip-open");
        day.classList.add("tip-dismissed");
      } else {
        closeTips(null);
      }
      return;
    }
    if (!target.classList || !target.classList.contains("bar")) {
      return;
    }
    var bars = target.closest("ol.bars");
    var buttons = visibleButtons(bars);
    var index = buttons.indexOf(target);
    var next = null;
    if (event.key === "ArrowRight" || event.key === "ArrowDown") {
      next = buttons[Math.min(buttons.length - 1, index + 1)];
    } else if (event.key === "ArrowLeft" || event.key === "ArrowUp") {
      next = buttons[Math.max(0, index - 1)];
    } else if (event.key === "Home") {
      next = buttons[0];
    } else if (event.key === "End") {
      next = buttons[buttons.length - 1];
    }
    if (next) {
      event.preventDefault();
      setRoving(bars, next);
      next.focus();
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    var bar = target.closest ? target.closest(".day > .bar") : null;
    if (bar) {
      var day = dayOf(bar);
      var open = !day.classList.contains("tip-open");
      closeTips(day);
      day.classList.toggle("tip-open", open);
      day.classList.remove("tip-dismissed");
      setRoving(bar.closest("ol.bars"), bar);
      return;
    }
    if (!(target.closest && target.closest(".tip"))) {
      closeTips(null);
    }
  });

  function undismiss(event) {
    var day = dayOf(event.target);
    if (day && !day.contains(event.relatedTarget)) {
      day.classList.remove("tip-dismissed");
    }
  }
  document.addEventListener("focusout", undismiss);
  document.addEventListener("mouseout", undismiss);

  // --- 3. Live updates -----------------------------------------------------------------

  var regions = document.querySelectorAll("[data-live]");
  var served = {}; // the HTML of each region as the server sent it, to compare with
  var userToggled = {}; // details the reader opened or closed: id -> open
  var statusEl = document.getElementById("live-status");

  function remember(root) {
    var live = root.querySelectorAll("[data-live]");
    for (var i = 0; i < live.length; i++) {
      served[live[i].getAttribute("data-live")] = live[i].innerHTML;
    }
  }

  document.addEventListener("click", function (event) {
    // Only what the reader chose is kept across swaps; otherwise the server decides
    // (a group opens by itself when one of its components has a problem).
    var summary = event.target.closest ? event.target.closest("details[id] > summary") : null;
    if (summary) {
      var details = summary.parentElement;
      window.setTimeout(function () {
        userToggled[details.id] = details.open;
      }, 0);
    }
  });

  function focusKey(el) {
    if (!el || el === document.body) {
      return null;
    }
    if (el.id) {
      return { id: el.id };
    }
    if (el.tagName === "A" && el.getAttribute("href")) {
      var region = el.closest("[data-live]");
      if (!region) {
        return null;
      }
      var same = region.querySelectorAll('a[href="' + cssEscape(el.getAttribute("href")) + '"]');
      return {
        region: region.getAttribute("data-live"),
        href: el.getAttribute("href"),
        nth: Array.prototype.indexOf.call(same, el)
      };
    }
    if (el.tagName === "SUMMARY" && el.parentElement && el.parentElement.id) {
      return { summaryOf: el.parentElement.id };
    }
    return null;
  }

  function cssEscape(value) {
    return window.CSS && CSS.escape ? CSS.escape(value) : value.replace(/["\\]/g, "\\$&");
  }

  function findByKey(key) {
    if (!key) {
      return null;
    }
    if (key.id) {
      return document.getElementById(key.id);
    }
    if (key.summaryOf) {
      var details = document.getElementById(key.summaryOf);
      return details ? details.querySelector("summary") : null;
    }
    var region = document.querySelector('[data-live="' + cssEscape(key.region) + '"]');
    if (!region) {
      return null;
    }
    var same = region.querySelectorAll('a[href="' + cssEscape(key.href) + '"]');
    return same[Math.min(key.nth, same.length - 1)] || null;
  }

  function scrollAnchor() {
    // The element at the top of the viewport (with an id), to keep it where it is.
    var candidates = document.querySelectorAll("main [id]");
    for (var i = 0; i < candidates.length; i++) {
      var rect = candidates[i].getBoundingClientRect();
      if (rect.bottom > 0 && rect.height > 0) {
        return { id: candidates[i].id, top: rect.top };
      }
    }
    return null;
  }

  function swap(doc) {
    var changed = false;
    var active = document.activeElement;
    var key = focusKey(active);
    var anchor = scrollAnchor();
    var roving = {};
    var focused = document.querySelectorAll('ol.bars .bar[tabindex="0"]');
    for (var f = 0; f < focused.length; f++) {
      var row = focused[f].closest("ol.bars");
      if (row.id) {
        roving[row.id] = focused[f].id;
      }
    }
    var live = document.querySelectorAll("[data-live]");
    for (var i = 0; i < live.length; i++) {
      var old = live[i];
      var name = old.getAttribute("data-live");
      var fresh = doc.querySelector('[data-live="' + cssEscape(name) + '"]');
      if (!fresh || served[name] === fresh.innerHTML) {
        continue;
      }
      served[name] = fresh.innerHTML;
      var node = document.importNode(fresh, true);
      var details = node.querySelectorAll("details[id]");
      for (var d = 0; d < details.length; d++) {
        if (Object.prototype.hasOwnProperty.call(userToggled, details[d].id)) {
          details[d].open = userToggled[details[d].id];
        }
      }
      old.replaceWith(node);
      localizeTimes(node);
      enhanceBars(node, roving);
      changed = true;
    }
    if (!changed) {
      return false;
    }
    if (doc.title) {
      document.title = doc.title;
    }
    if (anchor) {
      var again = document.getElementById(anchor.id);
      if (again) {
        window.scrollBy(0, again.getBoundingClientRect().top - anchor.top);
      }
    }
    if (active && !document.contains(active)) {
      var target = findByKey(key);
      if (target) {
        target.focus({ preventScroll: true });
      }
    }
    return true;
  }

  function clock() {
    return new Date().toLocaleTimeString(undefined, {
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit"
    });
  }

  function report(text) {
    if (statusEl) {
      statusEl.hidden = false;
      statusEl.textContent = text;
    }
  }

  var etag = null;
  var baseline = null;
  var timer = null;
  var backoff = 0;
  var lastPoll = 0;
  var inflight = false;
  var rendered = Date.parse((document.getElementById("live-banner") || document.body)
    .getAttribute("data-rendered") || "");

  function jitter(min, max) {
    return min + Math.random() * (max - min);
  }

  function schedule(delay) {
    window.clearTimeout(timer);
    timer = null;
    if (!document.hidden) {
      timer = window.setTimeout(poll, delay);
    }
  }

  function refresh() {
    return fetch(PAGE_URL, { headers: { Accept: "text/html" }, cache: "no-cache" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("page " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var banner = doc.getElementById("live-banner");
        var stamp = banner ? Date.parse(banner.getAttribute("data-rendered") || "") : NaN;
        if (!isNaN(stamp)) {
          rendered = stamp;
        }
        return swap(doc);
      });
  }

  function poll() {
    if (inflight || document.hidden) {
      return;
    }
    inflight = true;
    lastPoll = Date.now();
    var headers = { Accept: "application/json" };
    if (etag) {
      headers["If-None-Match"] = etag;
    }
    fetch(SUMMARY_URL, { headers: headers })
      .then(function (response) {
        if (response.status === 304) {
          return false;
        }
        if (!response.ok) {
          throw new Error("summary " + response.status);
        }
        etag = response.headers.get("ETag");
        return response.text().then(function (body) {
          var version = etag || body;
          var changed = baseline !== null && version !== baseline;
          if (baseline === null) {
            // First answer: the page is stale if the data changed after it was rendered.
            try {
              var updated = Date.parse(JSON.parse(body).page.updated_at);
              changed = !isNaN(updated) && !isNaN(rendered) && updated > rendered;
            } catch (e) {
              changed = false;
            }
          }
          baseline = version;
          return changed ? refresh() : false;
        });
      })
      .then(function (swapped) {
        backoff = 0;
        report("Last checked " + clock() + (swapped ? " · status updated" : ""));
      })
      .catch(function () {
        // Quietly: the API may not exist (404), or the network may be down.
        backoff = backoff ? Math.min(BACKOFF_MAX, backoff * 2) : BACKOFF_START;
      })
      .then(function () {
        inflight = false;
        schedule(backoff || jitter(POLL_MIN, POLL_MAX));
      });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      window.clearTimeout(timer);
      timer = null;
      return;
    }
    if (!regions.length || timer || inflight) {
      return;
    }
    var waited = Date.now() - lastPoll;
    schedule(waited >= POLL_MIN && !backoff ? jitter(0, 2000) : jitter(POLL_MIN, POLL_MAX));
  });

  // --- Start -------------------------------------------------------------------------

  function start() {
    remember(document);
    localizeTimes(document);
    enhanceBars(document, null);
    if (regions.length && window.fetch && window.DOMParser) {
      schedule(jitter(FIRST_POLL_MIN, FIRST_POLL_MAX));
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
