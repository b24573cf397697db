// Engage SDK 1.4.x in server mode (forceServerCookieMode) against OpenCDP: the README scenario 1 of
// stream-api.md §5.3. Prints one JSON line: the browser id from the cookie and every SDK answer.
const { initServer } = require("@sitecore/engage");

const base = process.env.OPENCDP_URL;
const clientKey = process.env.OPENCDP_CLIENT_KEY;

function response() {
  const headers = {};
  return { headers, setHeader(name, value) { headers[name.toLowerCase()] = value; } };
}

(async () => {
  const engage = initServer({
    clientKey, targetURL: base, pointOfSale: "shop.example", cookieDomain: "localhost",
    cookieExpiryDays: 730, forceServerCookieMode: true,
  });
  const first = response();
  await engage.handleCookie({ headers: {}, url: "http://localhost/" }, first);
  const setCookie = [].concat(first.headers["set-cookie"])[0];
  const cookie = setCookie.split(";")[0];
  const request = { headers: { cookie }, url: "http://localhost/products" };
  const base_ = { channel: "WEB", currency: "EUR", language: "EN", page: "products" };
  const answers = [];
  answers.push(await engage.pageView({ ...base_ }, request));
  answers.push(await engage.identity({ ...base_, email: "engage@example.com", firstName: "Eve",
    identifiers: [{ id: "engage@example.com", provider: "email" }] }, request));
  const phone = { item_id: "SKU_1", type: "MOBILE", name: "Phone", price: 30.6, quantity: 1 };
  answers.push(await engage.event("ADD", { ...base_, product: phone }, request));
  answers.push(await engage.event("ADD", { ...base_, product: { ...phone, quantity: 2 } }, request));
  answers.push(await engage.event("ADD", { ...base_, product: { item_id: "SKU_2", type: "BAG", name: "Bag",
    price: 5, quantity: 1 } }, request));
  answers.push(await engage.event("ADD_CONTACTS", { ...base_, contact: [{ email: "engage@example.com",
    firstname: "Eve", lastname: "Ng" }] }, request));
  answers.push(await engage.event("CONFIRM", { ...base_, product: [{ item_id: "SKU_1" }, { item_id: "SKU_2" }] }, request));
  answers.push(await engage.event("CHECKOUT", { ...base_, reference_id: "ENGAGE-1", status: "PURCHASED" }, request));
  answers.push(await engage.event("PAYMENT", { ...base_, pay_type: "Card" }, request));
  process.stdout.write(JSON.stringify({ cookie: setCookie, browserId: cookie.split("=")[1], answers }) + "\n");
})().catch((error) => { console.error(error); process.exit(1); });
