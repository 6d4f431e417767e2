/* Tessera admin: the few interactions that need a script. Everything works without it,
   only less conveniently (confirmations, copy, dynamic option and filter forms). */
(() => {
  "use strict";

  /* Destructive forms ask first: <form data-confirm="Delete record 3?"> */
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  /* Copy buttons: <button data-copy="#element-id"> */
  function copyByRange(element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    const done = document.execCommand("copy");
    selection.removeAllRanges();
    return done;
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.querySelector(button.dataset.copy);
    if (!source) return;
    const text = source.textContent.trim();
    let copied = false;
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch (error) {
      copied = copyByRange(source);
    }
    const label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = copied ? "Copied" : "Select and copy";
    button.setAttribute("aria-live", "polite");
    window.setTimeout(() => { button.textContent = label; }, 2500);
  });

  /* A field type's options form follows the type picker next to it. */
  for (const select of document.querySelectorAll("[data-type-select]")) {
    const container = select.form && select.form.querySelector("[data-options-forms]");
    if (!container) continue;
    const sync = () => {
      for (const fieldset of container.querySelectorAll("[data-options-for]")) {
        const chosen = fieldset.dataset.optionsFor === select.value;
        fieldset.hidden = !chosen;
        fieldset.disabled = !chosen;
      }
    };
    select.addEventListener("change", sync);
    sync();
  }

  /* Policies: the rule box only matters when "Whoever matches a rule" is chosen. */
  for (const fieldset of document.querySelectorAll("[data-policy]")) {
    const rule = fieldset.querySelector("[data-policy-rule]");
    const sync = () => {
      const chosen = fieldset.querySelector("[data-policy-mode]:checked");
      rule.hidden = !chosen || chosen.value !== "rule";
    };
    fieldset.addEventListener("change", sync);
    sync();
  }

  /* The filter builder: each row offers exactly the operators its field's type supports. */
  const builder = document.querySelector("[data-filter-builder]");
  const menuElement = document.getElementById("filter-operators");
  if (builder && menuElement) {
    const menu = JSON.parse(menuElement.textContent);
    const rows = builder.querySelector("[data-filter-rows]");
    const hints = { scalar: "value", list: "a, b, c", pair: "low, high", flag: "true or false" };
    let counter = rows.children.length;

    const shapeOf = (row) => {
      const option = row.querySelector("[data-filter-op]").selectedOptions[0];
      return (option && option.dataset.shape) || "scalar";
    };
    const syncHint = (row) => {
      row.querySelector("[data-filter-value]").placeholder = hints[shapeOf(row)] || "value";
    };
    const syncOperators = (row) => {
      const field = row.querySelector("[data-filter-field]").value;
      const ops = row.querySelector("[data-filter-op]");
      const entry = menu[field];
      if (!entry) return;
      const previous = ops.value;
      ops.replaceChildren(...entry.operators.map((op) => {
        const option = new Option(op.label, op.name, false, op.name === previous);
        option.dataset.shape = op.shape;
        return option;
      }));
      syncHint(row);
    };
    const wire = (row) => {
      row.querySelector("[data-filter-field]").addEventListener("change", () => syncOperators(row));
      row.querySelector("[data-filter-op]").addEventListener("change", () => syncHint(row));
      row.querySelector("[data-remove-filter]").addEventListener("click", () => {
        if (rows.children.length > 1) {
          row.remove();
        } else {
          row.querySelector("[data-filter-field]").value = "";
          row.querySelector("[data-filter-value]").value = "";
        }
      });
      syncOperators(row);
    };
    for (const row of rows.querySelectorAll("[data-filter-row]")) wire(row);

    builder.querySelector("[data-add-filter]").addEventListener("click", () => {
      const template = rows.lastElementChild;
      const row = template.cloneNode(true);
      counter += 1;
      for (const element of row.querySelectorAll("[id]")) {
        const base = element.id.replace(/-\d+$/, "");
        const label = row.querySelector(`label[for="${element.id}"]`);
        element.id = `${base}-${counter}`;
        if (label) label.htmlFor = element.id;
      }
      row.querySelector("[data-filter-field]").value = "";
      row.querySelector("[data-filter-value]").value = "";
      rows.appendChild(row);
      wire(row);
      row.querySelector("[data-filter-field]").focus();
    });
  }
  /* A link's record picker: <div data-picker="<data url>" data-picker-for="<input id>">.
     Searches the linked collection's display field as you type, 20 records at a time;
     "More" asks for the next page by cursor; choosing one puts its id in the input. */
  for (const picker of document.querySelectorAll("[data-picker]")) {
    const input = document.getElementById(picker.dataset.pickerFor);
    if (!input) continue;
    const search = document.createElement("input");
    search.type = "search";
    search.placeholder = "Search linked records…";
    search.setAttribute("aria-label", "Search linked records");
    search.dataset.pickerSearch = "";
    const list = document.createElement("ul");
    list.className = "picker-results";
    const more = document.createElement("button");
    more.type = "button";
    more.className = "button button-quiet";
    more.textContent = "More";
    more.hidden = true;
    picker.append(search, list, more);
    let cursor = null;
    let timer = null;

    async function load(append) {
      const url = new URL(picker.dataset.picker, window.location.origin);
      if (search.value) url.searchParams.set("q", search.value);
      if (append && cursor) url.searchParams.set("cursor", cursor);
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      const page = await response.json();
      if (!append) list.replaceChildren();
      for (const choice of page.data) {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "link-button";
        button.textContent = `${choice.label} (#${choice.id})`;
        button.addEventListener("click", () => {
          input.value = String(choice.id);
          list.replaceChildren();
          more.hidden = true;
        });
        item.append(button);
        list.append(item);
      }
      cursor = page.next_cursor;
      more.hidden = !cursor;
    }

    search.addEventListener("input", () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(() => load(false), 250);
    });
    search.addEventListener("focus", () => { if (!list.children.length) load(false); });
    more.addEventListener("click", () => load(true));
  }
  /* ==== The condition builder (kernel/condition_builder.py draws the markup) ====
     <div data-condition-builder data-target="<text box id>" data-rows="{join, rows}|null"
          data-menus="{collection: {field: {label, operators, quoted, values}}}"
          data-chosen="<collection>" [data-follow="<select id>"]>
     Rows of field, operator and value, joined by all (and) or any (or), that write the
     expression into the text box. The text box stays visible; typing in it (or ticking
     "Edit as text") sets the rows aside, for what rows cannot say. With data-follow the
     fields are those of the collection chosen in that select, and the rows start over when
     it changes. kernel/condition_builder.py's condition_text writes rows the same way. */
  const conditionLabels = {
    eq: "=", ne: "≠", gt: ">", lt: "<", gte: "≥", lte: "≤", in: "is one of",
    contains: "contains", between: "is between", is_null: "is empty", not_null: "is not empty",
  };
  const conditionSymbols = { eq: "=", ne: "!=", gt: ">", lt: "<", gte: ">=", lte: "<=" };
  const conditionHints = { in: "a, b, c", between: "low, high" };

  const conditionLiteral = (raw, quoted) => {
    const value = (raw || "").trim();
    if (/^@(auth\.[a-z_]+|now)$/.test(value)) return value;
    if (!quoted && /^(-?\d+(\.\d+)?|true|false|null)$/.test(value)) return value;
    return "'" + value.replace(/\\/g, "\\\\").replace(/'/g, "\\'") + "'";
  };

  const conditionComparison = (field, entry, op, value) => {
    const parts = value.split(",").map((item) => item.trim()).filter(Boolean);
    if (op === "is_null") return `${field} is null`;
    if (op === "not_null") return `${field} is not null`;
    if (op === "in") return `${field} in [${parts.map((v) => conditionLiteral(v, entry.quoted)).join(", ")}]`;
    if (op === "between") {
      const [low, high] = parts;
      return `${field} between ${conditionLiteral(low, entry.quoted)} and ${conditionLiteral(high, entry.quoted)}`;
    }
    if (op === "contains") return `${field} contains ${conditionLiteral(value, true)}`;
    return `${field} ${conditionSymbols[op]} ${conditionLiteral(value, entry.quoted)}`;
  };

  const conditionElement = (tag, attributes, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    node.append(...children);
    return node;
  };

  let conditionLists = 0;

  function conditionBuilder(builder) {
    const target = document.getElementById(builder.dataset.target);
    if (!target) return;
    const menus = JSON.parse(builder.dataset.menus || "{}");
    const follow = builder.dataset.follow ? document.getElementById(builder.dataset.follow) : null;
    const menu = () => menus[follow ? follow.value : builder.dataset.chosen] || {};
    const initial = JSON.parse(builder.dataset.rows || "null");
    const join = conditionElement("select", { "data-condition-join": "", "aria-label": "Match" },
      new Option("all of these (and)", "and"), new Option("any of these (or)", "or"));
    const rows = conditionElement("div", { "data-condition-rows": "", class: "stack" });
    const add = conditionElement("button", { type: "button", class: "button button-quiet", "data-add-condition": "" }, "+ Add condition");
    const advanced = conditionElement("input", { type: "checkbox", "data-condition-advanced": "" });
    const note = conditionElement("p", { class: "muted small", hidden: "" },
      "This condition is more than rows can show: edit it as text.");
    builder.append(
      conditionElement("div", { class: "field" }, conditionElement("span", {}, "Match "), join),
      rows, add, note,
      conditionElement("label", { class: "choice" }, advanced, " Edit as text (advanced)"),
    );

    const write = () => {
      if (advanced.checked) return;
      const fields = menu();
      const written = [];
      for (const row of rows.children) {
        const field = row.querySelector("[data-condition-field]").value;
        if (!field || !fields[field]) continue;
        const op = row.querySelector("[data-condition-op]").value;
        const value = row.querySelector("[data-condition-value]").value;
        written.push(conditionComparison(field, fields[field], op, value));
      }
      target.value = written.join(` ${join.value} `);
    };
    const syncRow = (row, chosen) => {
      const entry = menu()[row.querySelector("[data-condition-field]").value];
      const ops = row.querySelector("[data-condition-op]");
      const keep = chosen || ops.value;
      ops.replaceChildren(...(entry ? entry.operators : []).map(
        (name) => new Option(conditionLabels[name] || name, name, false, name === keep)));
      const value = row.querySelector("[data-condition-value]");
      value.hidden = ["is_null", "not_null"].includes(ops.value);
      const suggestions = entry ? entry.values : [];
      value.placeholder = conditionHints[ops.value] || (suggestions.length ? `value or ${suggestions.join(", ")}` : "value");
      row.querySelector("datalist").replaceChildren(...suggestions.map((item) => new Option(item, item)));
    };
    const addRow = (field = "", op = "", value = "") => {
      const fieldSelect = conditionElement("select", { "data-condition-field": "", "aria-label": "Field" },
        new Option("— field —", ""),
        ...Object.entries(menu()).map(([name, entry]) => new Option(entry.label, name, false, name === field)));
      const opSelect = conditionElement("select", { "data-condition-op": "", "aria-label": "Operator" });
      conditionLists += 1;
      const listId = `condition-values-${conditionLists}`;
      const valueInput = conditionElement("input", { "data-condition-value": "", "aria-label": "Value", list: listId });
      valueInput.value = value;
      const remove = conditionElement("button", { type: "button", class: "button button-quiet", "aria-label": "Remove condition" }, "×");
      const row = conditionElement("div", { class: "condition-row", "data-condition-row": "" },
        fieldSelect, opSelect, valueInput, conditionElement("datalist", { id: listId }), remove);
      rows.append(row);
      syncRow(row, op);
      fieldSelect.addEventListener("change", () => { syncRow(row); write(); });
      opSelect.addEventListener("change", () => { syncRow(row); write(); });
      valueInput.addEventListener("input", write);
      remove.addEventListener("click", () => { row.remove(); write(); });
      return row;
    };
    const setAdvanced = (on) => {
      advanced.checked = on;
      for (const control of [join, add, ...rows.querySelectorAll("select, input, button")]) {
        control.disabled = on;
      }
    };

    if (initial) {
      join.value = initial.join;
      for (const row of initial.rows) addRow(row.field, row.op, row.value);
      setAdvanced(false);
    } else {
      note.hidden = false;
      setAdvanced(true);
    }
    join.addEventListener("change", write);
    target.addEventListener("input", () => setAdvanced(true));
    add.addEventListener("click", () => addRow().querySelector("[data-condition-field]").focus());
    advanced.addEventListener("change", () => {
      setAdvanced(advanced.checked);
      write();
    });
    if (follow) {
      follow.addEventListener("change", () => {
        if (advanced.checked) return;
        rows.replaceChildren();
        write();
      });
    }
  }

  for (const builder of document.querySelectorAll("[data-condition-builder]")) {
    conditionBuilder(builder);
  }
  /* ==== end of the condition builder ==== */

  /* ---- Panel widgets (generic; any plugin page may use them, docs/plugins.md) ---------- */

  /* Live fragments: <form data-live-fragment="<url>" data-live-target="#id"> posts its
     fields to the url as the person edits the form (debounced) and shows the answer in the
     target. Only an answer marked X-Admin-Fragment is shown (not a login page). */
  function wireLiveFragment(form) {
    const target = document.querySelector(form.dataset.liveTarget);
    if (!target) return;
    let timer = null;
    let sequence = 0;
    const refresh = async () => {
      const mine = ++sequence;
      target.setAttribute("aria-busy", "true");
      let html = null;
      try {
        const response = await fetch(form.dataset.liveFragment, {
          method: "POST", body: new FormData(form), credentials: "same-origin",
        });
        if (response.headers.get("X-Admin-Fragment")) html = await response.text();
      } catch (error) {
        html = null;
      }
      if (mine !== sequence) return;
      target.removeAttribute("aria-busy");
      if (html === null) {
        target.textContent = "This part could not be refreshed. Reload the page.";
      } else {
        target.innerHTML = html;
      }
    };
    const schedule = () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 350);
    };
    form.addEventListener("input", schedule);
    form.addEventListener("change", schedule);
    form.addEventListener("click", (event) => {
      if (event.target.closest("button[type=button]")) schedule();  // add / remove a row
    });
    new MutationObserver(schedule).observe(form, { childList: true, subtree: true });
  }

  /* Repeatable rows: <div data-repeat> with rows marked data-repeat-row, a
     [data-repeat-add] button that appends a blank copy of the last row, and
     [data-repeat-remove] buttons in rows (the last row left is blanked instead). Ids in a
     copy get a fresh suffix, labels follow. */
  function blankRow(row, suffix) {
    for (const element of row.querySelectorAll("[id]")) {
      const label = row.querySelector(`label[for="${element.id}"]`);
      element.id = `${element.id.replace(/-r\d+$/, "")}-r${suffix}`;
      if (label) label.htmlFor = element.id;
    }
    for (const control of row.querySelectorAll("input, select, textarea")) {
      if (control.type === "checkbox" || control.type === "radio") control.checked = false;
      else if (control.tagName === "SELECT") control.selectedIndex = 0;
      else control.value = "";
    }
  }

  let rowCounter = 0;
  document.addEventListener("click", (event) => {
    const add = event.target.closest("[data-repeat-add]");
    const remove = event.target.closest("[data-repeat-remove]");
    const rows = (add || remove) && (add || remove).closest("[data-repeat]");
    if (!rows) return;
    const all = rows.querySelectorAll("[data-repeat-row]");
    if (add) {
      const row = all[all.length - 1].cloneNode(true);
      rowCounter += 1;
      blankRow(row, rowCounter);
      all[all.length - 1].after(row);
      const first = row.querySelector("input, select, textarea");
      if (first) first.focus();
    } else if (all.length > 1) {
      remove.closest("[data-repeat-row]").remove();
    } else {
      blankRow(all[0], 0);
    }
    rows.dispatchEvent(new Event("input", { bubbles: true }));
  });

  /* A select that offers what was typed elsewhere in its form:
     <select data-options-from="[data-param-name]"> keeps its first option and adds each
     distinct non-empty value of the matching inputs, keeping the choice while it exists. */
  function syncOptionsFrom() {
    for (const select of document.querySelectorAll("select[data-options-from]")) {
      const scope = select.form || document;
      const values = [...new Set([...scope.querySelectorAll(select.dataset.optionsFrom)]
        .map((input) => input.value.trim()).filter(Boolean))];
      const offered = [...select.options].slice(1).map((option) => option.value);
      if (values.join("\n") === offered.join("\n")) continue;
      const keep = select.value;
      select.replaceChildren(select.options[0],
        ...values.map((value) => new Option(value, value, false, value === keep)));
    }
  }

  for (const form of document.querySelectorAll("form[data-live-fragment]")) wireLiveFragment(form);
  document.addEventListener("input", syncOptionsFrom);
  syncOptionsFrom();
  /* ---- end of panel widgets ------------------------------------------------------------ */
})();
