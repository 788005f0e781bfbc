using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MkbVpn.Web.Pages;

/// <summary>The page's stylesheet and script, served by the app itself (no CDN, no build step).</summary>
internal static class Assets
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/static/app.css", () => Results.Text(Css, "text/css; charset=utf-8")).ExcludeFromDescription();
        app.MapGet("/static/app.js", () => Results.Text(Js, "text/javascript; charset=utf-8")).ExcludeFromDescription();
    }

    public const string Css = """
        :root { --fg:#1b1f24; --muted:#57606a; --bg:#fff; --line:#d0d7de; --accent:#0b5cad; --ok:#116329; --off:#6e7781; --bad:#a40e26; font-family: system-ui, sans-serif; }
        * { box-sizing: border-box; }
        body { margin:0; color:var(--fg); background:var(--bg); line-height:1.45; }
        .skip { position:absolute; left:-999px; } .skip:focus { left:8px; top:8px; background:#fff; padding:4px; }
        .sr { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); }
        header.top { display:flex; gap:1.5rem; align-items:center; padding:.6rem 1.2rem; background:#0d2238; color:#fff; }
        header.top a { color:#fff; margin-right:1rem; } .brand { font-weight:700; }
        .logout { margin-left:auto; display:flex; gap:.6rem; align-items:center; }
        main { max-width:1200px; margin:0 auto; padding:1rem 1.2rem 3rem; }
        h1 { font-size:1.5rem; margin:.6rem 0; }
        a { color:var(--accent); }
        button, .button { font:inherit; padding:.35rem .8rem; border:1px solid var(--accent); background:var(--accent); color:#fff; border-radius:6px; cursor:pointer; text-decoration:none; display:inline-block; }
        button.danger { background:var(--bad); border-color:var(--bad); }
        button:focus-visible, a:focus-visible, input:focus-visible, select:focus-visible { outline:3px solid #f0b400; outline-offset:1px; }
        input, select { font:inherit; padding:.3rem .4rem; border:1px solid var(--line); border-radius:6px; }
        label { margin-right:.3rem; }
        .bar { display:flex; flex-wrap:wrap; gap:1rem 2rem; align-items:center; margin:1rem 0; }
        .summary, .hint { color:var(--muted); }
        table { border-collapse:collapse; width:100%; }
        th, td { text-align:left; padding:.4rem .5rem; border-bottom:1px solid var(--line); font-variant-numeric:tabular-nums; }
        thead th { background:#f6f8fa; }
        .badge { display:inline-block; padding:0 .45rem; border-radius:999px; font-size:.85em; border:1px solid currentColor; }
        .badge.online, .badge.enabled { color:var(--ok); } .badge.offline { color:var(--off); } .badge.blocked { color:var(--bad); }
        .pages { display:flex; justify-content:space-between; margin-top:1rem; }
        .notice { padding:.6rem .8rem; border-radius:6px; background:#ddf4ff; border:1px solid #54aeff; }
        .notice.error { background:#ffebe9; border-color:#ff8182; }
        .detail { display:flex; flex-wrap:wrap; gap:2rem; align-items:flex-start; }
        .qr img { border:1px solid var(--line); background:#fff; } .qr figcaption { color:var(--muted); text-align:center; }
        .facts { display:grid; grid-template-columns:max-content 1fr; gap:.3rem 1rem; margin:0; } .facts dt { font-weight:600; } .facts dd { margin:0; }
        .actions { display:flex; gap:1rem; margin:1.2rem 0; align-items:center; }
        pre { background:#f6f8fa; padding:1rem; overflow:auto; border-radius:6px; }
        .login { max-width:24rem; margin:3rem auto; } .login form { display:grid; gap:.4rem; } .login button { margin-top:.8rem; }
        .empty { color:var(--muted); text-align:center; }
        """;

    public const string Js = """
        "use strict";
        // Ask before destructive form posts.
        document.addEventListener("submit", (e) => {
          const msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
          if (msg && !window.confirm(msg)) e.preventDefault();
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
