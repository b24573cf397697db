// The segment builder: the definition's JSON (the textarea) drawn as controls, and every control writing
// straight back into that JSON. The JSON stays the one source: what the builder cannot show as a control
// (a {"daysAgo": n} time, say) is kept as it is, so the two views always hold the same definition.
"use strict";

(function () {
  const root = document.getElementById("builder");
  const area = document.getElementById("definition");
  if (!root || !area) return;
  const catalogue = JSON.parse(document.getElementById("catalogue-data").textContent);
  const csrf = root.dataset.csrf;
  const GUEST_TYPES = ["customer", "visitor", "traveller"];
  const ENTITIES = { order: "Orders", orderItem: "Order items", session: "Sessions", event: "Events" };
  const SCOPES = { order: ["order"], orderItem: ["orderItem", "order"], session: ["session"], event: ["event", "session"] };
  const NUMERIC = ["integer", "number", "money"];
  const MEASURES = { count: "how many", countDistinct: "how many different", sum: "the sum of", avg: "the average of", min: "the smallest", max: "the largest" };
  const MEASURE_OPS = ["gte", "gt", "equals", "notEquals", "lt", "lte", "between"];
  const WORDS = {
    equals: "is", notEquals: "is not", in: "is one of", notIn: "is none of", contains: "contains",
    notContains: "does not contain", startsWith: "starts with", endsWith: "ends with", gt: "is more than",
    gte: "is at least", lt: "is less than", lte: "is at most", between: "is between", before: "is before",
    after: "is after", inLastDays: "is in the last (days)", notInLastDays: "is not in the last (days)",
    isEmpty: "is empty", isNotEmpty: "is not empty",
  };
  let definition = null;
  let timer = null;
  const pickers = {}; // attribute name -> its <datalist>, filled once from the tenant's data

  function picker(attr) {
    // The most common values of a string attribute, offered as the input's suggestions (fetched once).
    if (!pickers[attr.attr]) {
      const list = el("datalist", { id: "values-" + attr.attr.replace(/[^A-Za-z0-9_-]/g, "_") });
      document.body.append(list);
      pickers[attr.attr] = list;
      fetch("/ui/segments/values?attr=" + encodeURIComponent(attr.attr), { credentials: "same-origin" })
        .then((r) => r.json())
        .then((found) => { for (const value of found.values || []) list.append(el("option", { value })); })
        .catch(() => {});
    }
    return pickers[attr.attr].id;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function select(cls, label, options, chosen, onchange) {
    const box = el("select", { class: cls, "aria-label": label, onchange: (e) => onchange(e.target.value) });
    for (const [value, text] of options) {
      const option = el("option", { value }, text);
      if (String(value) === String(chosen)) option.selected = true;
      box.append(option);
    }
    return box;
  }

  function input(cls, label, value, onchange, type) {
    return el("input", { class: cls, "aria-label": label, type: type || "text", value: value === undefined || value === null ? "" : String(value),
      onchange: (e) => onchange(e.target.value) });
  }

  function attrsIn(scopes) {
    return catalogue.filter((a) => scopes.includes(a.entity));
  }

  function find(name) {
    return catalogue.find((a) => a.attr === name);
  }

  function typed(attr, text) {
    if (attr && NUMERIC.includes(attr.type) && text !== "" && !isNaN(Number(text))) return Number(text);
    if (attr && attr.type === "boolean") return text === "true";
    return text;
  }

  function changed() {
    area.value = JSON.stringify(definition, null, 2);
    draw();
    clearTimeout(timer);
    timer = setTimeout(estimate, 500);
  }

  function estimate() {
    const shown = document.getElementById("estimate");
    const body = new URLSearchParams({ csrf, definition: area.value });
    fetch("/ui/segments/estimate", { method: "POST", body, credentials: "same-origin" })
      .then((r) => r.json())
      .then((found) => {
        shown.textContent = found.errors ? "Not valid yet: " + found.errors.join("; ")
          : `About ${found.size.toLocaleString("en")} of ${found.totalGuests.toLocaleString("en")} guests (${found.percentOfGuests} %)`;
      })
      .catch(() => { shown.textContent = "The size could not be estimated."; });
  }

  function newRule(scopes) {
    const attr = attrsIn(scopes)[0];
    return { attr: attr.attr, op: attr.comparators[0], value: "" };
  }

  function kindOf(node) {
    if (node && Array.isArray(node.all)) return "all";
    if (node && Array.isArray(node.any)) return "any";
    if (node && node.not !== undefined) return "not";
    if (node && node.entity !== undefined) return "entity";
    return "rule";
  }

  // A slot is where a node lives: `get` reads it, `set` replaces it (null removes it).
  function drawSlot(get, set, scopes, label) {
    const node = get();
    const kind = kindOf(node);
    if (kind === "all" || kind === "any") return drawGroup(node, set, scopes, label);
    const box = el("div", { class: "b-slot" });
    box.append(drawNode(node, set, scopes));
    box.append(adders((added) => set({ all: [node, added] }), scopes));
    return box;
  }

  function adders(add, scopes) {
    const bar = el("div", { class: "b-add" });
    bar.append(el("button", { type: "button", class: "secondary b-add-rule", onclick: () => { add(newRule(scopes)); changed(); } }, "+ Rule"));
    if (scopes.length === 1 && scopes[0] === "guest") {
      bar.append(el("button", { type: "button", class: "secondary b-add-entity", onclick: () => { add({ entity: "order" }); changed(); } }, "+ Orders, items, sessions"));
    } else if (scopes[0] === "order" || scopes[0] === "session") {
      const inner = scopes[0] === "order" ? "orderItem" : "event";
      bar.append(el("button", { type: "button", class: "secondary b-add-entity", onclick: () => { add({ entity: inner }); changed(); } }, "+ " + ENTITIES[inner]));
    }
    bar.append(el("button", { type: "button", class: "secondary b-add-group", onclick: () => { add({ any: [newRule(scopes)] }); changed(); } }, "+ Group"));
    bar.append(el("button", { type: "button", class: "secondary b-add-not", onclick: () => { add({ not: newRule(scopes) }); changed(); } }, "+ Not"));
    return bar;
  }

  function drawGroup(node, set, scopes, label) {
    const join = Array.isArray(node.all) ? "all" : "any";
    const box = el("fieldset", { class: "b-group" });
    box.append(el("legend", {}, label || "Group"));
    box.append(select("b-join", "Match", [["all", "all of these"], ["any", "any of these"]], join, (value) => {
      const children = node[join];
      delete node[join];
      node[value] = children;
      changed();
    }));
    const list = node[join];
    list.forEach((child, index) => {
      const row = el("div", { class: "b-child" });
      row.append(drawNode(child, (replacement) => {
        if (replacement === null) list.splice(index, 1);
        else list[index] = replacement;
        if (list.length === 0) set(null);
      }, scopes));
      row.append(el("button", { type: "button", class: "danger b-remove", "aria-label": "Remove this condition", onclick: () => {
        list.splice(index, 1);
        if (list.length === 0) set(null);
        changed();
      } }, "×"));
      box.append(row);
    });
    box.append(adders((added) => list.push(added), scopes));
    return box;
  }

  function drawNode(node, set, scopes) {
    const kind = kindOf(node);
    if (kind === "all" || kind === "any") return drawGroup(node, set, scopes);
    if (kind === "not") {
      const box = el("div", { class: "b-not" }, el("strong", {}, "Not: "));
      box.append(drawNode(node.not, (inner) => { if (inner === null) set(null); else node.not = inner; }, scopes));
      return box;
    }
    if (kind === "entity") return drawEntity(node, scopes);
    return drawRule(node, scopes);
  }

  function drawRule(node, scopes) {
    const box = el("div", { class: "b-rule" });
    const choices = attrsIn(scopes).map((a) => [a.attr, a.attr]);
    if (!find(node.attr)) choices.unshift([node.attr, node.attr]);
    box.append(select("b-attr", "Attribute", choices, node.attr, (value) => {
      node.attr = value;
      const attr = find(value);
      if (attr && !attr.comparators.includes(node.op)) node.op = attr.comparators[0];
      node.value = "";
      changed();
    }));
    const attr = find(node.attr);
    const ops = (attr ? attr.comparators : [node.op]).map((op) => [op, WORDS[op] || op]);
    box.append(select("b-op", "Comparator", ops, node.op, (value) => {
      node.op = value;
      if (value === "isEmpty" || value === "isNotEmpty") delete node.value;
      else if (value === "between") node.value = ["", ""];
      else if (value === "in" || value === "notIn") node.value = [];
      else if (Array.isArray(node.value) || node.value === undefined) node.value = "";
      changed();
    }));
    box.append(drawValue(node, attr));
    return box;
  }

  function drawValue(node, attr) {
    const op = node.op;
    if (op === "isEmpty" || op === "isNotEmpty") return el("span");
    if (node.value !== null && typeof node.value === "object" && !Array.isArray(node.value)) {
      return el("code", { class: "b-raw" }, JSON.stringify(node.value)); // a relative time: kept as it is
    }
    if (op === "between") {
      const pair = Array.isArray(node.value) ? node.value : ["", ""];
      return el("span", {},
        input("b-value-low", "From", pair[0], (v) => { pair[0] = typed(attr, v); node.value = pair; changed(); }),
        " and ",
        input("b-value-high", "To", pair[1], (v) => { pair[1] = typed(attr, v); node.value = pair; changed(); }));
    }
    if (op === "in" || op === "notIn") {
      const list = Array.isArray(node.value) ? node.value : [];
      return input("b-value", "Values, comma-separated", list.join(", "), (v) => {
        node.value = v.split(",").map((part) => part.trim()).filter((part) => part !== "").map((part) => typed(attr, part));
        changed();
      });
    }
    if (attr && attr.type === "boolean") {
      return select("b-value", "Value", [["true", "true"], ["false", "false"]], String(node.value), (v) => { node.value = v === "true"; changed(); });
    }
    if (attr && attr.values && attr.values.length) {
      const options = attr.values.map((v) => [v, v]);
      if (!attr.values.includes(node.value)) options.unshift([node.value, node.value === "" ? "(choose)" : node.value]);
      return select("b-value", "Value", options, node.value, (v) => { node.value = v; changed(); });
    }
    const type = op === "inLastDays" || op === "notInLastDays" || (attr && NUMERIC.includes(attr.type)) ? "number" : "text";
    const field = input("b-value", "Value", node.value, (v) => {
      node.value = op === "inLastDays" || op === "notInLastDays" ? Number(v) : typed(attr, v);
      changed();
    }, type);
    if (attr && (attr.type === "string" || attr.type === "string list")) field.setAttribute("list", picker(attr));
    return field;
  }

  function drawEntity(node, outer) {
    const kind = node.entity;
    const scopes = SCOPES[kind] || [kind];
    const box = el("fieldset", { class: "b-entity" });
    box.append(el("legend", {}, ENTITIES[kind] || kind));
    const kinds = outer.includes("guest") ? Object.keys(ENTITIES) : [kind];
    box.append(select("b-entity-kind", "Of the guest's", kinds.map((k) => [k, ENTITIES[k]]), kind, (value) => {
      node.entity = value;
      delete node.where;
      delete node.measure;
      if (value !== "order" && value !== "orderItem") delete node.role;
      changed();
    }));
    if (kind === "order" || kind === "orderItem") {
      box.append(select("b-role", "Where the guest is", [["contact", "as the contact"], ["consumer", "as a consumer"], ["any", "either"]],
        node.role || "contact", (value) => { if (value === "contact") delete node.role; else node.role = value; changed(); }));
    }
    // the window
    const window = node.window || null;
    const windowKind = !window ? "always" : window.lastDays !== undefined ? "lastDays" : "between";
    const when = el("div", { class: "b-window" }, "When: ");
    when.append(select("b-window-kind", "When", [["always", "any time"], ["lastDays", "in the last (days)"], ["between", "between dates"]], windowKind, (value) => {
      if (value === "always") delete node.window;
      else if (value === "lastDays") node.window = { lastDays: 365 };
      else node.window = { from: "", to: "" };
      changed();
    }));
    if (windowKind === "lastDays") when.append(input("b-window-days", "Days", window.lastDays, (v) => { window.lastDays = Number(v); changed(); }, "number"));
    if (windowKind === "between") {
      when.append(input("b-window-from", "From", window.from, (v) => { if (v) window.from = v; else delete window.from; changed(); }));
      when.append(input("b-window-to", "To", window.to, (v) => { if (v) window.to = v; else delete window.to; changed(); }));
    }
    box.append(when);
    // the measure and its comparison
    const measure = node.measure || { fn: "count" };
    const count = el("div", { class: "b-measure" });
    count.append(select("b-fn", "Measure", Object.entries(MEASURES), measure.fn, (value) => {
      if (value === "count") delete node.measure;
      else {
        const numeric = attrsIn(scopes).filter((a) => value === "countDistinct" || NUMERIC.includes(a.type));
        node.measure = { fn: value, attr: (node.measure && node.measure.attr) || numeric[0].attr };
      }
      changed();
    }));
    if (measure.fn !== "count") {
      const numeric = attrsIn(scopes).filter((a) => measure.fn === "countDistinct" || NUMERIC.includes(a.type));
      count.append(select("b-measure-attr", "Of", numeric.map((a) => [a.attr, a.attr]), measure.attr, (value) => { measure.attr = value; changed(); }));
      const attr = find(measure.attr);
      if (attr && attr.type === "money" && measure.fn === "sum") {
        count.append(input("b-currency", "In currency", measure.currency, (v) => { if (v) measure.currency = v.toUpperCase(); else delete measure.currency; changed(); }));
      }
    } else {
      count.append(" matching rows");
    }
    const op = node.op || "gte";
    count.append(select("b-measure-op", "Compared", MEASURE_OPS.map((o) => [o, WORDS[o]]), op, (value) => {
      if (value === "gte" && node.value === 1 && !node.measure) { delete node.op; delete node.value; }
      else { node.op = value; node.value = value === "between" ? [0, 1] : (node.value === undefined ? 1 : node.value); }
      changed();
    }));
    const value = node.value === undefined ? 1 : node.value;
    if (Array.isArray(value)) {
      count.append(input("b-measure-low", "From", value[0], (v) => { node.value = [Number(v), value[1]]; node.op = op; changed(); }, "number"));
      count.append(input("b-measure-high", "To", value[1], (v) => { node.value = [value[0], Number(v)]; node.op = op; changed(); }, "number"));
    } else {
      count.append(input("b-measure-value", "Value", value, (v) => { node.value = Number(v); node.op = op; changed(); }, "number"));
    }
    box.append(count);
    // the condition on each row
    if (node.where === undefined) {
      box.append(adders((added) => { node.where = added; }, scopes));
    } else {
      box.append(drawSlot(() => node.where, (replacement) => { if (replacement === null) delete node.where; else node.where = replacement; },
        scopes, "Each row where"));
    }
    return box;
  }

  function draw() {
    root.replaceChildren();
    const types = el("fieldset", { class: "b-types" }, el("legend", {}, "Guests of the kinds"));
    for (const kind of GUEST_TYPES) {
      const box = el("input", { type: "checkbox", class: "b-guest-type", value: kind, onchange: (e) => {
        let chosen = definition.guestTypes || [...GUEST_TYPES];
        chosen = e.target.checked ? [...chosen, kind] : chosen.filter((k) => k !== kind);
        if (chosen.length === GUEST_TYPES.length || chosen.length === 0) delete definition.guestTypes;
        else definition.guestTypes = GUEST_TYPES.filter((k) => chosen.includes(k));
        changed();
      } });
      box.checked = !definition.guestTypes || definition.guestTypes.includes(kind);
      types.append(el("label", {}, box, " " + kind));
    }
    root.append(types);
    if (definition.match === undefined) {
      root.append(el("p", { class: "muted" }, "Every guest of these kinds. Add a condition:"));
      root.append(adders((added) => { definition.match = added; }, ["guest"]));
    } else {
      root.append(drawSlot(() => definition.match, (replacement) => { if (replacement === null) delete definition.match; else definition.match = replacement; },
        ["guest"], "Who match"));
    }
  }

  function load() {
    const note = document.getElementById("builder-note");
    try {
      const parsed = JSON.parse(area.value || "{}");
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
      definition = parsed;
      note.textContent = "";
      draw();
    } catch (error) {
      note.textContent = "The JSON below does not parse yet; the builder shows it again once it does.";
    }
  }

  area.addEventListener("input", () => { load(); clearTimeout(timer); timer = setTimeout(estimate, 500); });
  load();
  estimate();
})();
