// Cloud SDK 0.6.x (core + events) in server mode, loaded with require, against OpenCDP's edge routes:
// stream-api.md §5.3 scenario 3. Prints one JSON line with the browser cookie and the SDK answers.
const { CloudSDK } = require("@sitecore-cloudsdk/core/server");
const { pageView, event, identity } = require("@sitecore-cloudsdk/events/server");

const base = process.env.OPENCDP_URL;
const contextId = process.env.OPENCDP_CONTEXT_ID;
const siteName = process.env.OPENCDP_SITE || "site-a";
const email = process.env.OPENCDP_EMAIL || "cloud@example.com";

function response() {
  const headers = {};
  return { headers, setHeader(name, value) { headers[name.toLowerCase()] = value; } };
}

(async () => {
  const first = response();
  const page = { headers: { host: "localhost" }, url: "http://localhost/" };
  await CloudSDK(page, first, { sitecoreEdgeContextId: contextId, siteName, sitecoreEdgeUrl: base,
    enableServerCookie: true, cookieDomain: "localhost" }).addEvents().initialize();
  const setCookie = [].concat(first.headers["set-cookie"]).find((c) => c && c.startsWith("sc_"));
  const cookie = setCookie.split(";")[0];
  const request = { headers: { cookie, host: "localhost" }, url: "http://localhost/products" };
  const answers = [];
  answers.push(await pageView(request, { channel: "WEB", currency: "EUR" }));
  answers.push(await event(request, { type: "SIGNUP", channel: "WEB", currency: "EUR", extensionData: { plan: "pro" } }));
  answers.push(await identity(request, { channel: "WEB", currency: "EUR", email,
    identifiers: [{ id: email, provider: "email" }] }));
  process.stdout.write(JSON.stringify({ cookie: setCookie, browserId: cookie.split("=")[1], answers }) + "\n");
})().catch((error) => { console.error(error); process.exit(1); });
