/* Pilot's campaign builder: checks the rule as the operator types (debounced, the same
 * compiler as on save, through the rule-check URL), draws a caret under the character an error
 * is at, refreshes the panel of what the rule can use, and adds fact rows. No dependencies. */
(function () {
  "use strict";
  var DELAY_MS = 400;

  function ready(callback) {
    if (document.readyState !== "loading") callback();
    else document.addEventListener("DOMContentLoaded", callback);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* CEL counts columns in characters (code points); a textarea's offsets are UTF-16 units. */
  function offsetOf(text, line, column) {
    var lines = text.split("\n");
    var offset = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
    var chars = Array.from(lines[line - 1] || "").slice(0, column - 1).join("");
    return offset + chars.length;
  }

  /* A click on the caret puts the cursor on the character the error is at. */
  function goesTo(pre, input) {
    if (!input) return;
    pre.addEventListener("click", function () {
      var at = offsetOf(input.value, Number(pre.dataset.line), Number(pre.dataset.column));
      input.focus();
      input.setSelectionRange(at, at + 1);
    });
  }

  function showProblem(form, field, problem) {
    var box = form.querySelector('[data-rule-problem-for="' + field + '"]');
    var ok = form.querySelector('[data-rule-ok-for="' + field + '"]');
    var input = form.querySelector('[name="' + field + '"]');
    if (!box) return;
    box.textContent = "";
    if (!problem) {
      box.classList.add("hidden");
      if (ok) ok.classList.toggle("hidden", !(input && input.value.trim()));
      return;
    }
    if (ok) ok.classList.add("hidden");
    box.classList.remove("hidden");
    box.appendChild(el("p", "rule-problem-message text-red-600 text-sm", problem.message));
    if (problem.line) {
      var pre = el("pre", "rule-caret text-xs font-mono p-2 rounded-default overflow-x-auto");
      pre.dataset.line = problem.line;
      pre.dataset.column = problem.column;
      pre.title = "Line " + problem.line + ", column " + problem.column + ": click to go there";
      pre.appendChild(document.createTextNode(problem.source_line + "\n"));
      pre.appendChild(el("span", "text-red-600 font-bold", problem.caret));
      goesTo(pre, input);
      box.appendChild(pre);
    }
  }

  function setUp(form) {
    var first = form.querySelector("[data-rule-check-url]");
    if (!first) return;
    var url = first.dataset.ruleCheckUrl;
    var timer = null;
    var sequence = 0;

    function check() {
      var mine = ++sequence;
      var body = new FormData(form);
      var token = form.querySelector('[name="csrfmiddlewaretoken"]');
      fetch(url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: token ? { "X-CSRFToken": token.value } : {},
      })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (result) {
          if (!result || mine !== sequence) return; // a later check is on its way
          ["condition", "reward_expression", "facts"].forEach(function (field) {
            showProblem(form, field, result.problems[field]);
          });
          var panel = form.querySelector("[data-rule-vocabulary]");
          if (panel && result.panel) panel.outerHTML = result.panel;
        })
        .catch(function () { /* offline or refused: the save still checks */ });
    }

    function later() {
      clearTimeout(timer);
      timer = setTimeout(check, DELAY_MS);
    }

    form.addEventListener("input", function (event) {
      var target = event.target;
      if (target.matches("[data-rule-field]") || target.closest("[data-fact-rows]")) later();
    });
    form.addEventListener("change", function (event) {
      var name = event.target.name || "";
      if (name === "trigger" || name === "reward_type" || event.target.closest("[data-fact-rows]")) later();
    });

    // A saved rule may no longer compile (its trigger's schema changed): say so at once.
    var written = Array.prototype.some.call(
      form.querySelectorAll("[data-rule-field]"),
      function (input) { return input.value.trim() !== ""; }
    );
    if (written && !form.querySelector("[data-rule-problem-for] .rule-caret")) check();

    form.querySelectorAll("[data-rule-problem-for] .rule-caret").forEach(function (pre) {
      var field = pre.closest("[data-rule-problem-for]").dataset.ruleProblemFor;
      goesTo(pre, form.querySelector('[name="' + field + '"]'));
    });

    form.querySelectorAll("[data-fact-rows]").forEach(function (rows) {
      var prefix = rows.dataset.factRows;
      var total = rows.querySelector('[name="' + prefix + '-TOTAL_FORMS"]');
      var body = rows.querySelector("[data-fact-body]");
      var template = rows.querySelector("[data-fact-template]");
      rows.querySelector("[data-fact-add]").addEventListener("click", function () {
        var index = parseInt(total.value, 10);
        var html = template.innerHTML.replace(/__prefix__/g, String(index))
          .replace(/__number__/g, String(index + 1));
        body.insertAdjacentHTML("beforeend", html);
        total.value = String(index + 1);
        later();
      });
    });

  }

  ready(function () {
    document.querySelectorAll("form").forEach(setUp);
  });
})();
