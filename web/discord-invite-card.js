// <discord-invite-card code="proxy-demo" api="https://…"></discord-invite-card>
// A Discord invite, rendered like Discord's own card, from the invite proxy. No
// dependencies and no build step: load this file as a module. Attributes: code
// (required), api (the proxy's base URL; default: this page's origin), event (a
// scheduled event id). The element reflects its state in `state`: loading, ready,
// unknown, expired or error. Style it with the --invite-card-* custom properties
// and ::part(card | icon | name | counts | channel | expiry | event | join | message | retry).

const CDN = "https://cdn.discordapp.com";
const ICON_CSS_PX = 56;

/** The CDN URL of a guild icon: `a_` hashes are animated (GIF), sizes are powers of two. */
export function iconUrl(guildId, hash, cssPixels = ICON_CSS_PX, ratio = 1) {
  if (!hash) return null;
  const animated = hash.startsWith("a_");
  return `${CDN}/icons/${guildId}/${hash}.${animated ? "gif" : "webp"}?size=${iconSize(cssPixels * ratio)}`;
}

/** The smallest power of two the CDN serves (16 to 4096) that covers `pixels`. */
export function iconSize(pixels) {
  let size = 16;
  while (size < pixels && size < 4096) size *= 2;
  return size;
}

/** Discord's stand-in for a guild with no icon: the first letter of each word. */
export function initials(name) {
  return (name || "?")
    .split(/\s+/)
    .filter(Boolean)
    .map((word) => Array.from(word)[0])
    .join("")
    .slice(0, 5);
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
.card { position: relative; box-sizing: border-box; min-height: 8.5rem; padding: 1rem; border-radius: var(--invite-card-radius, 8px);
  background: var(--invite-card-background, var(--_bg)); color: var(--invite-card-text, var(--_fg)); }
.heading { margin: 0 0 .75rem; font-size: .75rem; font-weight: 700; text-transform: uppercase; color: var(--invite-card-muted, var(--_muted)); }
.row { display: flex; gap: 1rem; align-items: center; }
.icon { flex: none; width: ${ICON_CSS_PX}px; height: ${ICON_CSS_PX}px; border-radius: 16px; overflow: hidden; display: grid; place-items: center;
  background: var(--invite-card-accent, var(--_accent)); color: var(--invite-card-accent-text, var(--_accent-fg)); font-weight: 600; }
.icon img { width: 100%; height: 100%; }
.body { flex: 1; min-width: 0; }
.name, .line, .event { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.name { margin: 0; height: 1.5rem; line-height: 1.5rem; font-size: 1rem; font-weight: 600; }
.line { margin: 0; height: 1.25rem; line-height: 1.25rem; font-size: .875rem; color: var(--invite-card-muted, var(--_muted)); }
.dot { display: inline-block; vertical-align: middle; width: .5rem; height: .5rem; border-radius: 50%; margin-right: .25rem; background: currentColor; }
.online .dot { background: #23a55a; }
.counts > span + span { margin-left: .5rem; }
.event { margin: .75rem 0 0; height: 1.25rem; line-height: 1.25rem; font-size: .875rem; }
.event[hidden] { display: none; }
.join, .retry { flex: none; min-width: 4rem; padding: .5rem .875rem; border: 0; border-radius: 4px; font: inherit; font-size: .875rem; font-weight: 600;
  text-align: center; text-decoration: none; cursor: pointer; background: var(--invite-card-accent, var(--_accent)); color: var(--invite-card-accent-text, var(--_accent-fg)); }
.join:focus-visible, .retry:focus-visible { outline: 3px solid var(--invite-card-focus, var(--_focus)); outline-offset: 2px; }
.retry[disabled] { cursor: default; opacity: .85; }
[hidden] { display: none !important; }
.message { position: absolute; width: 1px; height: 1px; margin: 0; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
:host([state="loading"]) .fill { color: transparent; background: var(--_skeleton); border-radius: 4px; }
:host([state="loading"]) .icon { background: var(--_skeleton); }
`;

const MARKUP = `
<article class="card" part="card" aria-busy="true" aria-labelledby="name">
  <p class="heading">You've been invited to join a server</p>
  <div class="row">
    <div class="icon" part="icon"><span class="initials" aria-hidden="true"></span><img alt="" hidden></div>
    <div class="body">
      <p class="name fill" part="name" id="name">&nbsp;</p>
      <p class="line counts fill" part="counts">&nbsp;</p>
      <p class="line"><span class="channel" part="channel"></span> <span class="expiry" part="expiry"></span></p>
    </div>
    <a class="join" part="join" hidden>Join</a>
    <button class="retry" part="retry" type="button" hidden>Try again</button>
  </div>
  <p class="event" part="event" hidden></p>
  <p class="message" part="message" role="status"></p>
</article>`;

// What screen readers announce for each state, and the two lines the card shows.
const MESSAGES = {
  loading: "Loading the invite…",
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
  static observedAttributes = ["code", "api", "event"];

  #root;
  #els = {};
  #controller = null;
  #timer = 0;
  #invite = null;
  #queued = false;

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: "open" });
    this.#root.innerHTML = `<style>${STYLE}</style>${MARKUP}`;
    for (const name of ["card", "icon", "initials", "name", "counts", "channel", "expiry", "join", "retry", "event", "message"]) {
      this.#els[name] = this.#root.querySelector(`.${name}`);
    }
    this.#els.img = this.#root.querySelector("img");
    this.#els.img.addEventListener("error", () => { this.#els.img.hidden = true; this.#els.initials.hidden = false; });
    this.#els.retry.addEventListener("click", () => this.load());
  }

  connectedCallback() { this.#queue(); }

  disconnectedCallback() { this.#stop(); }

  attributeChangedCallback(_name, before, after) {
    if (this.isConnected && before !== after) this.#queue();
  }

  // Attributes set together (or at upgrade) make one request, not one each.
  #queue() {
    if (this.#queued) return;
    this.#queued = true;
    queueMicrotask(() => {
      this.#queued = false;
      if (this.isConnected) this.load();
    });
  }

  get state() { return this.getAttribute("state"); }

  /** Fetch the invite again (the browser's HTTP cache answers while the proxy says it may). */
  async load() {
    this.#stop();
    const code = (this.getAttribute("code") || "").trim();
    const event = (this.getAttribute("event") || "").trim();
    this.#setState("loading");
    this.#els.event.hidden = !event; // reserved now, so nothing moves when it arrives
    if (!code) return this.#fail(null);
    const base = (this.getAttribute("api") || location.origin).replace(/\/+$/, "");
    const query = new URLSearchParams({ with_counts: "true" });
    if (event) query.set("guild_scheduled_event_id", event);
    const controller = (this.#controller = new AbortController());
    let response;
    try {
      response = await fetch(`${base}/invites/${encodeURIComponent(code)}?${query}`, {
        signal: controller.signal,
        headers: { Accept: "application/json" },
      });
    } catch (error) {
      if (!controller.signal.aborted) this.#fail(null);
      return;
    }
    if (controller.signal.aborted) return;
    if (response.status === 404) return this.#setState("unknown");
    if (!response.ok) return this.#fail(response.headers.get("Retry-After"));
    try {
      this.#render(await response.json(), code, event);
    } catch {
      if (!controller.signal.aborted) this.#fail(null);
    }
  }

  #stop() {
    this.#controller?.abort();
    clearInterval(this.#timer);
    this.#timer = 0;
  }

  #setState(state, announce = MESSAGES[state]) {
    this.setAttribute("state", state);
    const els = this.#els;
    els.card.setAttribute("aria-busy", String(state === "loading"));
    els.message.textContent = announce;
    els.join.hidden = state !== "ready";
    els.retry.hidden = state !== "error";
    if (state === "loading") {
      this.#invite = null;
      els.name.innerHTML = "&nbsp;";
      els.counts.innerHTML = "&nbsp;";
      els.channel.textContent = els.expiry.textContent = els.initials.textContent = "";
      els.event.textContent = "\u00a0";
      els.img.hidden = true;
      els.name.classList.add("fill");
      els.counts.classList.add("fill");
    } else if (state !== "ready") {
      this.#stop();
      els.name.classList.remove("fill");
      els.counts.classList.remove("fill");
      const [title, detail] = SHOWN[state];
      els.name.textContent = title ?? this.#invite?.guild?.name ?? "";
      els.counts.textContent = detail;
      els.expiry.textContent = "";
      els.event.hidden = true;
      if (!this.#invite) els.initials.textContent = "?";
    }
  }

  #fail(retryAfter) {
    this.#setState("error");
    const seconds = Number.parseInt(retryAfter ?? "", 10);
    const retry = this.#els.retry;
    if (!(seconds > 0)) return;
    // Honour Retry-After: the button waits as long as the proxy asked.
    let left = seconds;
    const tick = () => {
      retry.disabled = left > 0;
      retry.textContent = left > 0 ? `Try again in ${left}s` : "Try again";
      left -= 1;
      if (left < -1) clearInterval(this.#timer);
    };
    tick();
    this.#timer = setInterval(tick, 1000);
  }

  #render(invite, code, event) {
    this.#invite = invite;
    const els = this.#els;
    const guild = invite.guild ?? {};
    const name = guild.name ?? "A Discord server";
    els.name.classList.remove("fill");
    els.counts.classList.remove("fill");
    els.name.textContent = name;
    els.initials.textContent = initials(name);
    const src = guild.id ? iconUrl(guild.id, guild.icon, ICON_CSS_PX, globalThis.devicePixelRatio || 1) : null;
    els.initials.hidden = Boolean(src);
    els.img.hidden = !src;
    if (src) els.img.src = src;
    else els.img.removeAttribute("src");
    els.counts.replaceChildren();
    const number = new Intl.NumberFormat();
    if (invite.approximate_presence_count != null) {
      const online = document.createElement("span");
      online.className = "online";
      online.innerHTML = '<span class="dot" aria-hidden="true"></span>';
      online.append(`${number.format(invite.approximate_presence_count)} Online`);
      els.counts.append(online, " ");
    }
    if (invite.approximate_member_count != null) {
      const members = document.createElement("span");
      members.innerHTML = '<span class="dot" aria-hidden="true"></span>';
      members.append(`${number.format(invite.approximate_member_count)} Members`);
      els.counts.append(members);
    }
    els.channel.textContent = invite.channel?.name ? `#${invite.channel.name}` : "";
    const scheduled = invite.guild_scheduled_event;
    els.event.hidden = !scheduled && !event;
    els.event.textContent = "";
    if (scheduled) {
      const start = new Date(scheduled.scheduled_start_time);
      const time = document.createElement("time");
      time.dateTime = start.toISOString();
      time.textContent = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(start);
      els.event.append(`Event: ${scheduled.name}, `, time);
    }
    const eventId = scheduled?.id ?? event;
    els.join.href = joinUrl(invite.code ?? code, eventId);
    els.join.setAttribute("aria-label", `Join ${name} on Discord`);
    const what = scheduled ? ` for ${scheduled.name}` : "";
    this.#setState("ready", `Invite to ${name}${what}.`);
    const expires = invite.expires_at ? Date.parse(invite.expires_at) : NaN;
    if (Number.isNaN(expires)) {
      els.expiry.textContent = "· Never expires";
      return;
    }
    const tick = () => {
      const left = expires - Date.now();
      if (left <= 0) return this.#setState("expired");
      els.expiry.textContent = `· Expires in ${formatLeft(left)}`;
    };
    tick();
    if (this.state === "ready") this.#timer = setInterval(tick, 1000);
  }
}

if (!customElements.get("discord-invite-card")) {
  customElements.define("discord-invite-card", DiscordInviteCard);
}
