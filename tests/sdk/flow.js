// The shopping flow every SDK scenario drives: page view, identity, ADD ×2 (one item twice), ADD_CONTACTS,
// CONFIRM, CHECKOUT, PAYMENT. `send(type, data)` adapts it to one SDK's calling convention.
const base = { channel: "WEB", currency: "EUR", language: "EN", page: "products" };

async function shop({ pageView, identity, send }, { email, reference }) {
  const phone = { item_id: "SKU_1", type: "MOBILE", name: "Phone", price: 30.6, quantity: 1 };
  const answers = [];
  answers.push(await pageView({ ...base }));
  answers.push(await identity({ ...base, email, firstName: "Eve", identifiers: [{ id: email, provider: "email" }] }));
  answers.push(await send("ADD", { ...base, product: phone }));
  answers.push(await send("ADD", { ...base, product: { ...phone, quantity: 2 } }));
  answers.push(await send("ADD", { ...base, product: { item_id: "SKU_2", type: "BAG", name: "Bag", price: 5, quantity: 1 } }));
  answers.push(await send("ADD_CONTACTS", { ...base, contact: [{ email, firstname: "Eve", lastname: "Ng" }] }));
  answers.push(await send("CONFIRM", { ...base, product: [{ item_id: "SKU_1" }, { item_id: "SKU_2" }] }));
  answers.push(await send("CHECKOUT", { ...base, reference_id: reference, status: "PURCHASED" }));
  answers.push(await send("PAYMENT", { ...base, pay_type: "Card" }));
  return answers;
}

function fakeResponse() {
  const headers = {};
  return { headers, setHeader(name, value) { headers[name.toLowerCase()] = value; } };
}

module.exports = { shop, fakeResponse };
