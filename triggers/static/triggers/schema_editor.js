// The trigger schema's field editor (triggers/templates/triggers/pilot/schema_editor.html):
// switch between the rows and the raw JSON, add rows, and check the schema without saving.
// The server does every conversion and check (/schema-check/), so there is one implementation.
(function () {
  "use strict";

  function checkUrl() {
    return window.location.pathname.replace(/change\/?$/, "") + "schema-check/";
  }

  function post(editor, mode) {
    var data = new FormData(editor.closest("form"));
    if (mode) data.set("schema_mode", mode);
    return fetch(checkUrl(), {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    }).then(function (response) {
      if (!response.ok) throw new Error("The check failed (" + response.status + ")");
      return response.json();
    });
  }

  function item(text) {
    var li = document.createElement("li");
    li.textContent = text;
    return li;
  }

  function list(title, lines) {
    var section = document.createElement("div");
    var heading = document.createElement("p");
    heading.textContent = title;
    var ul = document.createElement("ul");
    lines.forEach(function (line) { ul.appendChild(item(line)); });
    section.appendChild(heading);
    section.appendChild(ul);
    return section;
  }

  function show(editor, result) {
    var panel = editor.querySelector("[data-check-result]");
    panel.replaceChildren();
    var rows = (result.row_errors || []).map(function (e) {
      return "Row " + e.row + ", " + e.field.replace("_", " ") + ": " + e.message;
    });
    if (result.errors.length || rows.length) {
      panel.appendChild(list("Saving would be refused:", result.errors.concat(rows)));
    }
    if (result.refused && result.refused.length) {
      panel.appendChild(list("Active campaigns this change would stop:", result.refused));
    }
    if (result.warned && result.warned.length) {
      panel.appendChild(list("These draft or paused campaigns would no longer compile:", result.warned));
    }
    if (!panel.children.length) {
      panel.appendChild(list("The schema is valid and no campaign would break. Not saved yet.", []));
    }
  }

  function setMode(editor, mode) {
    editor.dataset.mode = mode;
    editor.querySelector("[data-fields-pane]").hidden = mode !== "fields";
    editor.querySelector("[data-raw-pane]").hidden = mode !== "raw";
  }

  function addRow(editor, values) {
    var total = editor.querySelector("input[name$='-TOTAL_FORMS']");
    var index = parseInt(total.value, 10);
    var html = editor.querySelector("template[data-empty-row]").innerHTML.replace(/__prefix__/g, index);
    var body = editor.querySelector("tbody[data-rows]");
    body.insertAdjacentHTML("beforeend", html);
    total.value = index + 1;
    if (!values) return;
    var row = body.lastElementChild;
    Object.keys(values).forEach(function (key) {
      var input = row.querySelector("[name$='-" + index + "-" + key + "']");
      if (!input) return;
      if (input.type === "checkbox") input.checked = values[key];
      else input.value = values[key];
    });
  }

  function replaceRows(editor, rows) {
    // The rows become what the raw JSON says (the server read it): nothing typed is lost.
    editor.querySelector("tbody[data-rows]").replaceChildren();
    editor.querySelector("input[name$='-TOTAL_FORMS']").value = 0;
    editor.querySelector("input[name$='-INITIAL_FORMS']").value = 0;
    rows.forEach(function (values) { addRow(editor, values); });
    addRow(editor);
  }

  function init(editor) {
    editor.querySelectorAll("input[name='schema_mode']").forEach(function (radio) {
      radio.addEventListener("change", function () {
        var from = editor.dataset.mode;
        if (radio.value === from) return;
        // Each side shows what the other says (the server converts): posted in the old mode.
        post(editor, from).then(function (result) {
          if (radio.value === "raw" && result.schema !== null) {
            editor.querySelector("textarea[data-raw-schema]").value = result.schema;
          } else if (radio.value === "fields" && result.rows !== null) {
            replaceRows(editor, result.rows);
          } else {
            // Not convertible: stay where the operator's work is, and say why.
            editor.querySelector("input[name='schema_mode'][value='" + from + "']").checked = true;
            setMode(editor, from);
            show(editor, result);
            if (result.raw_note) {
              editor.querySelector("[data-check-result]").prepend(
                item("The field editor cannot express this schema: " + result.raw_note));
            }
            return;
          }
          setMode(editor, radio.value);
        });
      });
    });
    editor.querySelector("[data-add-row]").addEventListener("click", function () { addRow(editor); });
    editor.querySelector("[data-schema-check]").addEventListener("click", function () {
      post(editor).then(function (result) { show(editor, result); }).catch(function (error) {
        editor.querySelector("[data-check-result]").textContent = error.message;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-schema-editor]").forEach(init);
  });
})();
