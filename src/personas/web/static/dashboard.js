// The dashboard: everything comes from the JSON API of the same server.
"use strict";

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"];
const colour = (group) => (group < 0 ? "#bbbbbb" : COLOURS[group % COLOURS.length]);
const personaNames = {};
const coarseNames = {};

// The API key typed into the page, for this tab only (sessionStorage): sent with every request.
const KEY_STORE = "personas-api-key";

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(path, { ...options, headers });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(body.detail || `HTTP ${response.status}`);
  }
  return body;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

// An item as a person reads it: its title, or its id where the data has no title (the id is what the
// new-user form asks for, so it is shown beside a title too).
function itemLine(item, tail) {
  const hasTitle = Boolean(item.title && item.title.trim());
  const line = element("li", hasTitle ? `${item.title} ` : `${item.item_id} `);
  line.dataset.itemId = item.item_id;
  if (hasTitle) line.append(element("span", `${item.item_id} `, "item-id"));
  if (tail) line.append(tail);
  return line;
}

function showError(target, error) {
  target.replaceChildren(element("p", error.message, "error"));
}

async function loadSummary() {
  const health = await api("/health");
  document.getElementById("summary").textContent =
    `${health.personas} personas · ${health.users} users · ${health.items} items · model ${health.model} · ` +
    `${health.database}: ${health.new_users} new users, ${health.events} events`;
}

// "stability 0.83", and an "unstable" badge when the run flagged the persona.
function stabilityNodes(persona) {
  if (persona.stability === null || persona.stability === undefined) return [];
  const nodes = [element("span", ` · stability ${persona.stability.toFixed(2)}`, "stability")];
  if (persona.unstable) nodes.push(element("span", "unstable", "unstable"));
  return nodes;
}

function sizeLine(persona, tag) {
  const line = element(tag, `${persona.size} users (${(100 * persona.share).toFixed(1)}%)`, "size");
  line.append(...stabilityNodes(persona));
  return line;
}

async function loadTree() {
  const tree = await api("/personas/tree");
  if (tree.levels < 2) return;
  const list = document.getElementById("tree");
  list.replaceChildren();
  for (const root of tree.roots) {
    coarseNames[root.persona.group] = root.persona.display_name;
    const node = element("li", null, "tree-coarse");
    node.dataset.group = root.persona.group;
    const head = element("div", null, "tree-head");
    head.append(element("strong", root.persona.display_name, "tree-name"), element("span", " — "));
    head.append(sizeLine(root.persona, "span"));
    head.append(element("span", ` · ${root.children.length} sub-personas`, "muted"));
    const children = element("ul");
    for (const child of root.children) {
      const leaf = element("li", null, "tree-fine");
      leaf.dataset.group = child.group;
      leaf.style.setProperty("--colour", colour(child.group));
      leaf.append(element("span", `${child.group}. ${child.display_name}`, "tree-name"), element("span", " — "));
      leaf.append(sizeLine(child, "span"));
      children.append(leaf);
    }
    node.append(head, children);
    list.append(node);
  }
  document.getElementById("tree-panel").hidden = false;
}

async function loadCards() {
  const page = await api("/personas?limit=100");
  const cards = document.getElementById("cards");
  cards.replaceChildren();
  for (const persona of page.items) {
    personaNames[persona.group] = persona.display_name;
    const card = element("article", null, "persona-card");
    card.dataset.group = persona.group;
    card.style.setProperty("--colour", colour(persona.group));
    card.append(element("h3", `${persona.group}. ${persona.display_name}`));
    card.append(element("div", "", "name-facts"));
    card.append(sizeLine(persona, "div"));
    if (persona.parent !== null && persona.parent !== undefined && coarseNames[persona.parent]) {
      card.append(element("div", `in ${coarseNames[persona.parent]}`, "muted parent"));
    }
    card.append(element("div", persona.keywords.join(", "), "keywords"));
    cards.append(card);
  }
  // The distinctive items need the full card; fetch them after the cards are on screen.
  await Promise.all(page.items.map(async (persona) => {
    const detail = await api(`/personas/${persona.group}`);
    const card = cards.querySelector(`[data-group="${persona.group}"]`);
    // The numbers behind the name: "Sci-Fi 2.1x, 34% of members"; and where the name comes from.
    const facts = (detail.card.name_facts || []).map(
      (f) => `${f.label} ${f.lift.toFixed(1)}x, ${Math.round(100 * f.share)}% of members`,
    );
    const source = detail.card.name_source ? `name from: ${detail.card.name_source}` : "";
    card.querySelector(".name-facts").textContent = [...facts, source].filter(Boolean).join(" · ");
    const list = element("ol");
    for (const item of detail.card.distinctive_items.slice(0, 3)) {
      list.append(itemLine(item, element("span", `(lift ${item.lift.toFixed(1)})`, "muted")));
    }
    card.append(list);
  }));
}

async function loadMap() {
  const map = await api("/map");
  const groups = [...new Set(map.persona)].sort((a, b) => a - b);
  const traces = groups.map((group) => {
    const index = map.persona.flatMap((p, i) => (p === group ? [i] : []));
    return {
      type: "scatter",
      mode: "markers",
      name: group < 0 ? "no persona" : `${group}. ${personaNames[group] || ""}`,
      x: index.map((i) => map.x[i]),
      y: index.map((i) => map.y[i]),
      text: index.map((i) => `user ${map.user_id[i]}`),
      hoverinfo: "text+name",
      marker: { size: 5, color: colour(group), opacity: 0.75 },
    };
  });
  await Plotly.newPlot("map", traces, {
    margin: { l: 20, r: 10, t: 10, b: 20 },
    xaxis: { showticklabels: false, zeroline: false },
    yaxis: { showticklabels: false, zeroline: false },
    legend: { font: { size: 10 } },
  }, { displaylogo: false, responsive: true });
  document.getElementById("map").on("plotly_click", (event) => {
    const id = event.points[0].text.replace("user ", "");
    document.getElementById("user-id").value = id;
    showUser(id);
  });
}

function recommendationList(recs) {
  const list = element("ol", null, "recommendations");
  for (const item of recs.items) {
    list.append(itemLine(item, element("span", item.reason.text, "why")));
  }
  return list;
}

function personaLine(persona, prefix) {
  if (!persona) return element("p", `${prefix}: no persona`);
  return element("p", `${prefix}: ${persona.group}. ${persona.display_name}`, "persona-line");
}

// Two-level runs: the coarse persona above the fine one (nothing in a one-level run).
function coarseLine(coarse) {
  return coarse ? [element("p", `in the coarse persona ${coarse.display_name}`, "coarse-line")] : [];
}

async function showUser(userId) {
  const target = document.getElementById("user-result");
  target.replaceChildren(element("p", "loading…", "muted"));
  try {
    const id = encodeURIComponent(userId.trim());
    const [persona, recs] = await Promise.all([
      api(`/users/${id}/persona`),
      api(`/users/${id}/recommendations?n=10`),
    ]);
    const route = recs.route ? `, route ${recs.route}` : "";
    target.replaceChildren(
      personaLine(persona.persona, `User ${persona.user_id}`),
      ...coarseLine(persona.coarse_persona),
      element("p", `${recs.history} items in the history${route}`, "muted"),
      recommendationList(recs),
    );
  } catch (error) {
    showError(target, error);
  }
}

async function createUser(text, items) {
  const target = document.getElementById("new-user-result");
  target.replaceChildren(element("p", "loading…", "muted"));
  const body = { n: 10, items };
  if (text) body.text = text;
  try {
    const created = await api("/users", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    target.replaceChildren(
      personaLine(created.persona, `New user ${created.user_id}`),
      ...coarseLine(created.coarse_persona),
      recommendationList(created.recommendations),
    );
    loadSummary();
  } catch (error) {
    showError(target, error);
  }
}

document.getElementById("user-form").addEventListener("submit", (event) => {
  event.preventDefault();
  showUser(document.getElementById("user-id").value);
});

document.getElementById("new-user-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = document.getElementById("new-text").value.trim();
  const items = document.getElementById("new-items").value.split(",").map((s) => s.trim()).filter(Boolean);
  createUser(text, items);
});

document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = document.getElementById("api-key").value.trim();
  if (key) sessionStorage.setItem(KEY_STORE, key);
  else sessionStorage.removeItem(KEY_STORE);
  document.getElementById("api-key").value = "";
  loadAll();
});

async function loadAll() {
  try {
    await loadSummary();
    await loadTree();
    await loadCards();
    await loadMap();
    document.body.dataset.ready = "true";
  } catch (error) {
    showError(document.getElementById("summary"), error);
  }
}

loadAll();
