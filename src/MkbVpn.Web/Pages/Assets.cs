using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MkbVpn.Web.Pages;

/// <summary>The page's stylesheet and script, served by the app itself (no CDN, no build step).</summary>
internal static class Assets
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/static/app.css", () => Results.Text(Css, "text/css; charset=utf-8")).ExcludeFromDescription().AllowAnonymous();
        app.MapGet("/static/app.js", () => Results.Text(Js, "text/javascript; charset=utf-8")).ExcludeFromDescription().AllowAnonymous();
    }

    public const string Css = """
        :root {
          color-scheme: light dark;
          --fg:#1b1f24; --muted:#57606a; --bg:#ffffff; --panel:#f6f8fa; --line:#d0d7de; --accent:#0b5cad; --on-accent:#ffffff;
          --ok:#116329; --off:#6e7781; --bad:#a40e26; --top:#0d2238; --on-top:#ffffff; --focus:#f0b400;
          --info-bg:#ddf4ff; --info-line:#54aeff; --error-bg:#ffebe9; --error-line:#ff8182;
          font-family: system-ui, sans-serif;
        }
        @media (prefers-color-scheme: dark) {
          :root {
            --fg:#e6edf3; --muted:#9da7b3; --bg:#0d1117; --panel:#161b22; --line:#30363d; --accent:#4493f8; --on-accent:#0d1117;
            --ok:#3fb950; --off:#8b949e; --bad:#f85149; --top:#010409; --on-top:#e6edf3;
            --info-bg:#0c2d4b; --info-line:#1f6feb; --error-bg:#3c1418; --error-line:#da3633;
          }
        }
        * { box-sizing: border-box; }
        html { -webkit-text-size-adjust: 100%; }
        body { margin:0; color:var(--fg); background:var(--bg); line-height:1.45; }
        .skip { position:absolute; left:-999px; } .skip:focus { left:8px; top:8px; background:var(--bg); padding:4px; }
        .sr { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); white-space:nowrap; }
        header.top { display:flex; flex-wrap:wrap; gap:.4rem 1.5rem; align-items:center; padding:.6rem 1.2rem; background:var(--top); color:var(--on-top); }
        header.top a { color:var(--on-top); margin-right:1rem; } .brand { font-weight:700; }
        header.top nav { display:flex; flex-wrap:wrap; }
        .logout { margin-left:auto; display:flex; gap:.6rem; align-items:center; }
        main { max-width:1200px; margin:0 auto; padding:1rem 1.2rem 3rem; }
        h1 { font-size:1.5rem; margin:.6rem 0; overflow-wrap:anywhere; }
        a { color:var(--accent); }
        code, pre { overflow-wrap:anywhere; }
        button, .button { font:inherit; padding:.35rem .8rem; min-height:2.25rem; border:1px solid var(--accent); background:var(--accent); color:var(--on-accent); border-radius:6px; cursor:pointer; text-decoration:none; display:inline-block; }
        button.danger, .button.danger { background:var(--bad); border-color:var(--bad); color:#fff; }
        button.quiet, .button.quiet { background:transparent; color:var(--accent); }
        button:focus-visible, a:focus-visible, input:focus-visible, select:focus-visible, summary:focus-visible { outline:3px solid var(--focus); outline-offset:1px; }
        input, select { font:inherit; padding:.3rem .4rem; border:1px solid var(--line); border-radius:6px; background:var(--bg); color:var(--fg); max-width:100%; }
        label { margin-right:.3rem; }
        .bar { display:flex; flex-wrap:wrap; gap:1rem 2rem; align-items:center; margin:1rem 0; }
        .bar form { display:flex; flex-wrap:wrap; gap:.4rem; align-items:center; }
        .summary, .hint { color:var(--muted); }
        table { border-collapse:collapse; width:100%; }
        th, td { text-align:left; padding:.4rem .5rem; border-bottom:1px solid var(--line); font-variant-numeric:tabular-nums; }
        thead th { background:var(--panel); }
        .scroll { overflow-x:auto; max-width:100%; }
        .row-actions form { margin:0; }
        .badge { display:inline-block; padding:0 .45rem; border-radius:999px; font-size:.85em; border:1px solid currentColor; }
        .badge.online, .badge.enabled { color:var(--ok); } .badge.offline { color:var(--off); } .badge.blocked, .badge.expired, .badge.stale { color:var(--bad); } .badge.never { color:var(--off); }
        .pages { display:flex; justify-content:space-between; gap:1rem; margin-top:1rem; }
        .notice { padding:.6rem .8rem; border-radius:6px; background:var(--info-bg); border:1px solid var(--info-line); }
        .notice.error { background:var(--error-bg); border-color:var(--error-line); }
        .confirm { padding:.8rem 1rem; border-radius:6px; border:2px solid var(--bad); background:var(--error-bg); margin:1rem 0; }
        .confirm h2 { margin-top:0; font-size:1.2rem; }
        .detail { display:flex; flex-wrap:wrap; gap:2rem; align-items:flex-start; }
        .detail > * { min-width:0; max-width:100%; }
        .qr { margin:0; } .qr img { border:1px solid var(--line); background:#fff; max-width:100%; height:auto; } .qr figcaption { color:var(--muted); text-align:center; }
        .chart img { max-width:100%; height:auto; }
        .facts { display:grid; grid-template-columns:max-content minmax(0, 1fr); gap:.3rem 1rem; margin:0; } .facts dt { font-weight:600; } .facts dd { margin:0; min-width:0; overflow-wrap:anywhere; }
        .actions { display:flex; flex-wrap:wrap; gap:1rem; margin:1.2rem 0; align-items:center; }
        .actions form { margin:0; }
        .check { display:flex; flex-wrap:wrap; gap:.4rem .6rem; align-items:center; margin:1rem 0; }
        .edit, .add-rule, .add-group { display:grid; grid-template-columns:max-content minmax(0, 22rem); gap:.4rem .8rem; align-items:center; margin:1rem 0; }
        .edit h2, .edit h3, .add-rule h3, .add-group h3, .edit p { grid-column:1 / -1; margin:.4rem 0 0; }
        .edit button, .add-rule button, .add-group button { grid-column:2; justify-self:start; }
        pre { background:var(--panel); padding:1rem; overflow:auto; border-radius:6px; max-width:100%; white-space:pre-wrap; }
        .login { max-width:24rem; margin:3rem auto; } .login form { display:grid; gap:.4rem; } .login button { margin-top:.8rem; }
        .empty { color:var(--muted); text-align:center; }
        .settings th { width:14rem; }
        /* A phone: the client list becomes one card per client; other tables scroll inside their box. */
        @media (max-width: 720px) {
          main { padding:.6rem .7rem 2rem; }
          header.top { padding:.5rem .7rem; }
          header.top a { margin-right:.7rem; }
          .logout { margin-left:0; }
          table.cards thead { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); }
          table.cards, table.cards tbody, table.cards tr, table.cards th, table.cards td { display:block; width:100%; }
          table.cards tr { border:1px solid var(--line); border-radius:8px; margin:.6rem 0; padding:.3rem .6rem; background:var(--panel); }
          table.cards th[scope=row] { font-size:1.1rem; border-bottom:1px solid var(--line); }
          table.cards td { display:flex; justify-content:space-between; gap:1rem; border:0; padding:.2rem 0; overflow-wrap:anywhere; }
          table.cards td[data-label]::before { content:attr(data-label); color:var(--muted); }
          table.cards td.row-actions { justify-content:flex-end; padding-top:.4rem; }
          table.cards td.row-actions button { min-height:2.75rem; min-width:7rem; }
          table.cards td.empty { display:block; }
          .settings th { width:auto; }
          .edit, .add-rule, .add-group { grid-template-columns:minmax(0, 1fr); gap:.2rem; }
          .edit button, .add-rule button, .add-group button { grid-column:1; margin-top:.4rem; }
        }
        """;

    public const string Js = """
        "use strict";
        // Ask before destructive form posts.
        document.addEventListener("submit", (e) => {
          const msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
          if (msg && !window.confirm(msg)) e.preventDefault();
        });
        // A destructive link (Remove): without script it opens a confirmation page; with it, a dialog and then the post.
        document.addEventListener("click", (e) => {
          const a = e.target.closest && e.target.closest("a[data-post]");
          if (!a) return;
          e.preventDefault();
          if (!window.confirm(a.getAttribute("data-confirm") || "Sure?")) return;
          const token = document.querySelector('meta[name="csrf-token"]');
          const form = document.createElement("form");
          form.method = "post";
          form.action = a.getAttribute("data-post");
          const field = document.createElement("input");
          field.type = "hidden";
          field.name = "_csrf";
          field.value = token ? token.content : "";
          form.appendChild(field);
          document.body.appendChild(form);
          form.submit();
        });

        function ago(iso) {
          if (!iso) return "never";
          let s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
          if (s < 60) return Math.floor(s) + "s ago";
          if (s < 3600) return Math.floor(s / 60) + "m ago";
          if (s < 172800) return Math.floor(s / 3600) + "h ago";
          return Math.floor(s / 86400) + "d ago";
        }
        function bytes(n) {
          if (n < 1024) return n + " B";
          if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
          if (n < 1073741824) return (n / 1048576).toFixed(1) + " MiB";
          return (n / 1073741824).toFixed(2) + " GiB";
        }
        function badge(cell, cls, text) {
          const b = document.createElement("span");
          b.className = "badge " + cls;
          b.textContent = text;
          cell.replaceChildren(b);
        }

        // Live status of the clients shown: refreshed from the API without reloading the page.
        async function refresh(table) {
          const p = new URLSearchParams({ page: table.dataset.page, page_size: table.dataset.pageSize });
          if (table.dataset.q) p.set("q", table.dataset.q);
          if (table.dataset.state && table.dataset.state !== "all") p.set("state", table.dataset.state);
          const r = await fetch("/api/v1/clients?" + p, { credentials: "same-origin", headers: { Accept: "application/json" } });
          if (r.status === 401) { window.location.href = "/login"; return; }
          if (!r.ok) return;
          const data = await r.json();
          const byName = new Map(data.items.map((c) => [c.name, c]));
          for (const row of table.tBodies[0].rows) {
            const c = byName.get(row.dataset.name);
            if (!c) continue;
            const f = (name) => row.querySelector('[data-field="' + name + '"]');
            badge(f("state"), c.state, c.state);
            const button = row.querySelector("button[data-verb]");
            const verb = c.state === "enabled" ? "block" : "reenable";
            if (button && button.dataset.verb !== verb) {
              button.dataset.verb = verb;
              button.textContent = verb === "block" ? "Block" : "Re-enable";
              button.className = verb === "block" ? "quiet block" : "reenable";
              button.setAttribute("aria-label", button.textContent + " " + c.name);
              button.form.action = "/clients/" + encodeURIComponent(c.name) + "/" + verb;
            }
            badge(f("online"), c.online ? "online" : "offline", c.online ? "online" : "offline");
            f("handshake").textContent = ago(c.latest_handshake);
            f("endpoint").textContent = c.endpoint || "-";
            f("rx").textContent = bytes(c.rx_bytes);
            f("tx").textContent = bytes(c.tx_bytes);
          }
          const iface = document.getElementById("iface");
          if (iface) {
            iface.className = "badge " + (data.interface_up ? "online" : "offline");
            iface.textContent = data.interface_up ? "up" : "down";
          }
          const updated = document.getElementById("updated");
          if (updated) updated.textContent = new Date().toLocaleTimeString();
          table.dataset.refreshed = String(Number(table.dataset.refreshed || "0") + 1);
        }

        document.addEventListener("DOMContentLoaded", () => {
          const table = document.getElementById("clients");
          if (!table) return;
          const tick = () => refresh(table).catch(() => {});
          tick();
          setInterval(tick, 5000);
        });
        """;
}
