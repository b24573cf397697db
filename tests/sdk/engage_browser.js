// Engage SDK 1.4.x in browser mode, under jsdom (stream-api.md §5.3, 2): `init` creates the browser and
// writes the bid cookie in the page's document; events and getGuestId() work.
const { JSDOM } = require("jsdom");
const { shop } = require("./flow");

const dom = new JSDOM("<!doctype html><html><body></body></html>", { url: "https://localhost/products" });
for (const name of ["window", "document", "navigator", "location", "localStorage", "sessionStorage"]) {
  Object.defineProperty(globalThis, name, { value: dom.window[name], configurable: true, writable: true });
}

(async () => {
  const { init } = require("@sitecore/engage");
  const engage = await init({
    clientKey: process.env.OPENCDP_CLIENT_KEY, targetURL: process.env.OPENCDP_URL, pointOfSale: "shop.example",
    cookieDomain: "localhost", cookieExpiryDays: 730, webPersonalization: false,
  });
  const answers = await shop({
    pageView: (data) => engage.pageView(data),
    identity: (data) => engage.identity(data),
    send: (type, data) => engage.event(type, data),
  }, { email: process.env.OPENCDP_EMAIL, reference: process.env.OPENCDP_REFERENCE });
  const guestId = await engage.getGuestId();
  process.stdout.write(JSON.stringify({ cookie: document.cookie, browserId: engage.getBrowserId(), guestId, answers }) + "\n");
})().catch((error) => { console.error(error); process.exit(1); });
