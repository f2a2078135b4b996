// <discord-invite-card code="…" (or guild="…") api="…" event="…">: an invite drawn like
// Discord's own card, from the invite proxy. No dependencies, no build step; docs/web.md
// has its attributes, `state`, --invite-card-* properties and ::part names.

const ICON_CSS_PX = 56;

/** The guild's icon through the proxy, so visitors never ask Discord: a still PNG, or a
 * GIF for an animated (`a_`) one unless motion is unwanted. */
export function iconUrl(api, code, hash, animate = true) {
  if (!hash || !code) return null;
  const file = `${encodeURIComponent(hash)}.${animate && hash.startsWith("a_") ? "gif" : "png"}`;
  return `${api}/invites/${encodeURIComponent(code)}/icons/${file}`;
}

/** Retry-After in seconds, from either form (seconds, HTTP date); 0 if none. */
export function retryAfterSeconds(value) {
  if (!value) return 0;
  const seconds = /^\d+$/.test(value.trim()) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
  return Number.isFinite(seconds) && seconds > 0 ? Math.ceil(seconds) : 0;
}

/** Discord's stand-in for no icon: each word's first letter. */
export function initials(name) {
  return (name || "?")
    .split(/\s+/)
    .filter(Boolean)
    .map((word) => Array.from(word)[0])
    .slice(0, 5)
    .join("");
}

export function joinUrl(code, event) {
  const url = `https://discord.gg/${encodeURIComponent(code)}`;
  return event ? `${url}?event=${encodeURIComponent(event)}` : url;
}

/** "1h 05m", "3m 09s", "42s": what is left of an invite's life. */
export function formatLeft(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), sec = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${two(m)}m`;
  if (m) return `${m}m ${two(sec)}s`;
  return `${sec}s`;
}

const STYLE = `
:host { display: block; max-width: 28rem; font: 400 1rem/1.375 var(--invite-card-font, "gg sans", "Noto Sans", "Helvetica Neue", Helvetica, Arial, sans-serif);
  --_bg: #f2f3f5; --_fg: #060607; --_muted: #4e5058; --_skeleton: #dfe1e5; --_accent: #1f6f3c; --_accent-fg: #fff; --_focus: #005fcc; }
@media (prefers-color-scheme: dark) {
  :host { --_bg: #2b2d31; --_fg: #f2f3f5; --_muted: #b5bac1; --_skeleton: #3f4147; --_accent: #248046; --_accent-fg: #fff; --_focus: #8ab4ff; }
}
:host([hidden]) { display: none; }
.card { --muted: var(--invite-card-muted, var(--_muted)); --accent: var(--invite-card-accent, var(--_accent));
  --accent-fg: var(--invite-card-accent-text, var(--_accent-fg)); position: relative; box-sizing: border-box; min-height: 8.5rem;
  padding: 1rem; border-radius: var(--invite-card-radius, 8px); background: var(--invite-card-background, var(--_bg)); color: var(--invite-card-text, var(--_fg)); }
.heading { margin: 0 0 .75rem; font-size: .75rem; font-weight: 700; text-transform: uppercase; color: var(--muted); }
.row { display: flex; gap: 1rem; align-items: center; }
.icon { flex: none; width: ${ICON_CSS_PX}px; height: ${ICON_CSS_PX}px; border-radius: 16px; overflow: hidden; display: grid; place-items: center;
  background: var(--accent); color: var(--accent-fg); font-weight: 600; }
.icon img, .initials { width: 100%; height: 100%; }
.initials { display: grid; place-items: center; }
.body { flex: 1; min-width: 0; }
.name, .line, .event { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.name { margin: 0; height: 1.5rem; line-height: 1.5rem; font-size: 1rem; font-weight: 600; }
.line { margin: 0; height: 1.25rem; line-height: 1.25rem; font-size: .875rem; color: var(--muted); }
.counts { display: flex; align-items: center; gap: .75rem; }
.dot { display: inline-block; width: .5rem; height: .5rem; border-radius: 50%; margin-right: .25rem; background: currentColor; }
.online .dot { background: #23a55a; }
.event { margin: .75rem 0 0; height: 1.25rem; line-height: 1.25rem; font-size: .875rem; }
.join, .retry { flex: none; min-width: 4rem; padding: .5rem .875rem; border: 0; border-radius: 4px; font: inherit; font-size: .875rem; font-weight: 600;
  text-align: center; text-decoration: none; cursor: pointer; background: var(--accent); color: var(--accent-fg); }
.join:focus-visible, .retry:focus-visible { outline: 3px solid var(--invite-card-focus, var(--_focus)); outline-offset: 2px; }
.retry[aria-disabled="true"] { cursor: default; opacity: .85; }
.card:focus { outline: none; }
[hidden] { display: none !important; }
.message { position: absolute; width: 1px; height: 1px; margin: 0; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
:host([state="loading"]) .fill { color: transparent; background: var(--_skeleton); border-radius: 4px; }
:host([state="loading"]) .icon { background: var(--_skeleton); }
`;

const MARKUP = `
<article class="card" part="card" aria-busy="true" aria-labelledby="name" tabindex="-1">
  <p class="heading">You've been invited to join a server</p>
  <div class="row">
    <div class="icon" part="icon"><span class="initials" aria-hidden="true"></span><img alt="" hidden></div>
    <div class="body">
      <p class="name fill" part="name" id="name">&nbsp;</p>
      <p class="line counts fill" part="counts">&nbsp;</p>
      <p class="line where fill"><span class="channel" part="channel"></span> <span class="expiry" part="expiry"></span></p>
    </div>
    <a class="join" part="join" hidden>Join</a>
    <button class="retry" part="retry" type="button" hidden>Try again</button>
  </div>
  <p class="event" part="event" hidden></p>
  <p class="message" part="message" role="status"></p>
</article>`;

// What screen readers announce for each state, and the card's two lines.
const MESSAGES = {
  loading: "", // aria-busy says it: a page of cards should not announce each loading
  unknown: "This invite is invalid or has been revoked.",
  expired: "This invite has expired.",
  error: "The invite could not be loaded right now.",
};
const SHOWN = {
  unknown: ["Invalid invite", "It may have expired or been revoked."],
  expired: [null, "This invite has expired."],
  error: ["Invite unavailable", "It could not be loaded right now."],
};

export class DiscordInviteCard extends HTMLElement {
  static observedAttributes = ["code", "guild", "api", "event"];

  #root;
  #els = {};
  #controller = null;
  #timer = 0;
  #invite = null;
  #queued = false;
  #waitUntil = 0; // Retry-After, as a time

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: "open" });
    this.#root.innerHTML = `<style>${STYLE}</style>${MARKUP}`;
    for (const name of ["card", "icon", "initials", "name", "counts", "where", "channel", "expiry", "join", "retry", "event", "message"]) {
      this.#els[name] = this.#root.querySelector(`.${name}`);
    }
    this.#els.img = this.#root.querySelector("img");
    this.#els.img.addEventListener("error", () => { this.#els.img.hidden = true; this.#els.initials.hidden = false; });
    this.#els.retry.addEventListener("click", () => {
      if (Date.now() < this.#waitUntil) return; // still waiting out Retry-After
      this.#els.card.focus(); // keep focus in the card while the button is hidden
      this.load();
    });
  }

  connectedCallback() { this.#queue(); }

  disconnectedCallback() { this.#stop(); }

  attributeChangedCallback(_name, before, after) {
    if (this.isConnected && before !== after) this.#queue();
  }

  // Attributes set together (or at upgrade): one request.
  #queue() {
    if (this.#queued) return;
    this.#queued = true;
    queueMicrotask(() => {
      this.#queued = false;
      if (this.isConnected) this.load();
    });
  }

  get state() { return this.getAttribute("state"); }

  #api() {
    return (this.getAttribute("api") || location.origin).replace(/\/+$/, "");
  }

  /** Fetch again (the HTTP cache answers while the proxy says it may). */
  async load() {
    this.#stop();
    const code = (this.getAttribute("code") || "").trim();
    const guild = (this.getAttribute("guild") || "").trim();
    const event = (this.getAttribute("event") || "").trim();
    this.#setState("loading");
    this.#els.event.hidden = !event; // reserved now: nothing moves when it arrives
    if (!code && !guild) return this.#fail(null);
    const base = this.#api();
    const query = new URLSearchParams({ with_counts: "true" });
    if (event) query.set("guild_scheduled_event_id", event);
    const controller = (this.#controller = new AbortController());
    const current = () => controller === this.#controller && !controller.signal.aborted;
    let response, body;
    try {
      // By guild: its lasting invite, whichever that is now.
      const path = code ? `invites/${encodeURIComponent(code)}` : `guilds/${encodeURIComponent(guild)}/invite`;
      response = await fetch(`${base}/${path}?${query}`, {
        signal: controller.signal,
        headers: { Accept: "application/json" },
      });
      body = await response.json().catch(() => null);
    } catch {
      if (current()) this.#fail(null);
      return;
    }
    if (!current()) return; // a newer load owns the card
    // Only the proxy's own 404 means it is gone; a wrong `api` URL is an error.
    if (response.status === 404 && body?.error?.code === "unknown_invite") return this.#setState("unknown");
    if (!response.ok || !body) return this.#fail(response.headers.get("Retry-After"));
    try {
      this.#render(body, code, event);
    } catch {
      this.#fail(null);
    }
  }

  #stop() {
    this.#controller?.abort();
    this.#controller = null;
    clearInterval(this.#timer);
    this.#timer = 0;
  }

  // The loading skeleton.
  #fill(on) {
    for (const el of [this.#els.name, this.#els.counts, this.#els.where]) el.classList.toggle("fill", on);
  }

  #every(seconds, tick) {
    clearInterval(this.#timer);
    tick();
    this.#timer = setInterval(tick, seconds * 1000);
  }

  #setState(state, announce = MESSAGES[state]) {
    const els = this.#els;
    const hadFocus = this.#root.activeElement !== null;
    this.setAttribute("state", state);
    els.card.setAttribute("aria-busy", String(state === "loading"));
    els.message.textContent = announce;
    els.join.hidden = state !== "ready";
    els.retry.hidden = state !== "error";
    if (state === "loading") {
      this.#invite = null;
      els.name.innerHTML = "&nbsp;";
      els.counts.innerHTML = "&nbsp;";
      els.expiry.textContent = els.initials.textContent = "";
      els.channel.textContent = "\u00a0";
      els.event.textContent = "\u00a0";
      els.img.hidden = true;
      els.initials.hidden = false;
      this.#fill(true);
    } else if (state !== "ready") {
      this.#stop();
      this.#fill(false);
      const [title, detail] = SHOWN[state];
      els.name.textContent = title ?? this.#invite?.guild?.name ?? "";
      els.counts.textContent = detail;
      els.expiry.textContent = "";
      els.event.hidden = true;
      if (!this.#invite) {
        els.img.hidden = true;
        els.initials.hidden = false;
        els.initials.textContent = "?";
      }
    }
    // Focus in the card (on Retry, say) moves to what it offers now.
    if (hadFocus && state !== "loading") (state === "ready" ? els.join : state === "error" ? els.retry : els.card).focus();
  }

  #fail(retryAfter) {
    const retry = this.#els.retry;
    const seconds = retryAfterSeconds(retryAfter);
    this.#waitUntil = Date.now() + seconds * 1000;
    retry.removeAttribute("aria-disabled");
    retry.textContent = "Try again";
    this.#setState("error", seconds ? `${MESSAGES.error} Try again in ${seconds} seconds.` : MESSAGES.error);
    if (!seconds) return;
    // Retry-After: the button waits as the proxy asked, and stays focusable.
    this.#every(1, () => {
      const left = Math.ceil((this.#waitUntil - Date.now()) / 1000);
      if (left > 0) {
        retry.setAttribute("aria-disabled", "true");
        retry.textContent = `Try again in ${left}s`;
      } else {
        retry.removeAttribute("aria-disabled");
        retry.textContent = "Try again";
        clearInterval(this.#timer);
      }
    });
  }

  #render(invite, code, event) {
    this.#invite = invite;
    const els = this.#els;
    const guild = invite.guild ?? {};
    const name = guild.name ?? "A Discord server";
    this.#fill(false);
    els.name.textContent = name;
    els.initials.textContent = initials(name);
    const still = matchMedia("(prefers-reduced-motion: reduce)").matches;
    const src = iconUrl(this.#api(), invite.code ?? code, guild.icon, !still);
    els.initials.hidden = Boolean(src);
    els.img.hidden = !src;
    if (src) els.img.src = src;
    else els.img.removeAttribute("src");
    els.counts.replaceChildren();
    const number = new Intl.NumberFormat();
    for (const [count, label, className] of [
      [invite.approximate_presence_count, "Online", "online"],
      [invite.approximate_member_count, "Members", "members"],
    ]) {
      if (count == null) continue;
      const span = document.createElement("span");
      span.className = className;
      span.innerHTML = '<span class="dot" aria-hidden="true"></span>';
      span.append(`${number.format(count)} ${label}`);
      els.counts.append(...(els.counts.childNodes.length ? [" ", span] : [span]));
    }
    els.channel.textContent = invite.channel?.name ? `#${invite.channel.name}` : "";
    const scheduled = invite.guild_scheduled_event;
    els.event.hidden = !scheduled && !event;
    els.event.textContent = "";
    if (scheduled) {
      els.event.append(`Event: ${scheduled.name}`);
      const start = new Date(scheduled.scheduled_start_time);
      if (!Number.isNaN(start.getTime())) {
        const time = document.createElement("time");
        time.dateTime = start.toISOString();
        time.textContent = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(start);
        els.event.append(", ", time);
      }
    }
    els.join.href = joinUrl(invite.code ?? code, scheduled?.id ?? event);
    els.join.setAttribute("aria-label", `Join ${name} on Discord`);
    const what = scheduled ? ` for ${scheduled.name}` : "";
    this.#setState("ready", `Invite to ${name}${what}.`);
    const expires = invite.expires_at ? Date.parse(invite.expires_at) : NaN;
    if (Number.isNaN(expires)) {
      els.expiry.textContent = "· Never expires";
      return;
    }
    this.#every(1, () => {
      const left = expires - Date.now();
      if (left <= 0) return this.#setState("expired");
      els.expiry.textContent = `· Expires in ${formatLeft(left)}`;
    });
  }
}

if (!customElements.get("discord-invite-card")) {
  customElements.define("discord-invite-card", DiscordInviteCard);
}
