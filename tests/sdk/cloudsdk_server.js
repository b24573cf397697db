// Cloud SDK 0.6.x (core + events) in server mode, loaded with require, against OpenCDP's edge routes
// (stream-api.md §5.3, 3). Prints one JSON line with the browser cookie and every SDK answer.
const { CloudSDK } = require("@sitecore-cloudsdk/core/server");
const { pageView, event, identity } = require("@sitecore-cloudsdk/events/server");
const { shop, fakeResponse } = require("./flow");

(async () => {
  const first = fakeResponse();
  const page = { headers: { host: "localhost" }, url: "http://localhost/" };
  await CloudSDK(page, first, {
    sitecoreEdgeContextId: process.env.OPENCDP_CONTEXT_ID, siteName: process.env.OPENCDP_SITE,
    sitecoreEdgeUrl: process.env.OPENCDP_URL, enableServerCookie: true, cookieDomain: "localhost",
  }).addEvents().initialize();
  const setCookie = [].concat(first.headers["set-cookie"]).find((c) => c && c.startsWith("sc_"));
  const request = { headers: { cookie: setCookie.split(";")[0], host: "localhost" }, url: "http://localhost/products" };
  const answers = await shop({
    pageView: (data) => pageView(request, data),
    identity: (data) => identity(request, data),
    send: (type, data) => event(request, { ...data, type, extensionData: { plan: "pro" } }),
  }, { email: process.env.OPENCDP_EMAIL, reference: process.env.OPENCDP_REFERENCE });
  process.stdout.write(JSON.stringify({ cookie: setCookie, browserId: setCookie.split(";")[0].split("=")[1], answers }) + "\n");
})().catch((error) => { console.error(error); process.exit(1); });
