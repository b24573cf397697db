// Engage SDK 1.4.x in server mode (forceServerCookieMode) against OpenCDP (stream-api.md §5.3, 1).
// Prints one JSON line: the cookie the SDK set, the browser id and every SDK answer.
const { initServer } = require("@sitecore/engage");
const { shop, fakeResponse } = require("./flow");

(async () => {
  const engage = initServer({
    clientKey: process.env.OPENCDP_CLIENT_KEY, targetURL: process.env.OPENCDP_URL, pointOfSale: "shop.example",
    cookieDomain: "localhost", cookieExpiryDays: 730, forceServerCookieMode: true,
  });
  const first = fakeResponse();
  await engage.handleCookie({ headers: {}, url: "http://localhost/" }, first);
  const setCookie = [].concat(first.headers["set-cookie"])[0];
  const request = { headers: { cookie: setCookie.split(";")[0] }, url: "http://localhost/products" };
  const answers = await shop({
    pageView: (data) => engage.pageView(data, request),
    identity: (data) => engage.identity(data, request),
    send: (type, data) => engage.event(type, data, request),
  }, { email: process.env.OPENCDP_EMAIL, reference: process.env.OPENCDP_REFERENCE });
  process.stdout.write(JSON.stringify({ cookie: setCookie, browserId: setCookie.split(";")[0].split("=")[1], answers }) + "\n");
})().catch((error) => { console.error(error); process.exit(1); });
