// The Vortex strategy editor: CodeMirror 6 for the strategy language (docs/strategy-language.md).
// Built by `npm run build` into public/vendor/strategy-editor-bundle.js, which defines
// window.VortexEditorLib = { create(textarea, options), version }. public/strategy-editor.js loads it.
import { EditorState, Compartment } from '@codemirror/state';
import {
  EditorView,
  keymap,
  lineNumbers,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  drawSelection,
  placeholder as placeholderExt,
} from '@codemirror/view';
import {
  StreamLanguage,
  HighlightStyle,
  syntaxHighlighting,
  bracketMatching,
  indentOnInput,
  indentUnit,
  syntaxTree,
} from '@codemirror/language';
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { lintGutter, lintKeymap, setDiagnostics as setLintDiagnostics } from '@codemirror/lint';
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap } from '@codemirror/autocomplete';
import { tags as t } from '@lezer/highlight';
import { FUNCS, HELPERS, FIELDS } from './language-data.js';

const VERSION = '1';

// ---------------------------------------------------------------------------------------------------------
// Language: a stream tokenizer following engine/src/strategy/lexer.rs.

const FUNC_BY_NAME = new Map(FUNCS.map((f) => [f.name, f]));
const HELPER_BY_NAME = new Map(HELPERS.map((h) => [h.name, h]));
const FIELD_SET = new Set(FIELDS);
const RISK_SETTINGS = ['stop_loss', 'take_profit', 'trailing_stop', 'size', 'max_bars'];
const RISK_SET = new Set(RISK_SETTINGS);
const TOKEN_FOR_KEYWORD = {
  param: 'definitionKeyword',
  let: 'definitionKeyword',
  entry: 'controlKeyword',
  exit: 'controlKeyword',
  when: 'controlKeyword',
  risk: 'keyword',
  in: 'keyword',
  long: 'modifier',
  short: 'modifier',
  and: 'operatorKeyword',
  or: 'operatorKeyword',
  not: 'operatorKeyword',
  true: 'bool',
  false: 'bool',
  int: 'typeName',
  float: 'typeName',
  bool: 'typeName',
};

const strategyParser = {
  name: 'vortex-strategy',
  startState: () => ({
    params: [], // names declared with `param` so far
    series: [], // names declared with `let` so far
    riskBlock: false, // inside `risk { ... }`
    riskLine: false, // this line is a `risk ...` statement
    parens: 0, // open ( and [ (newlines inside are not statement ends)
    expectName: null, // 'param' | 'let': the next name is declared
    afterDot: false, // the next name is an indicator output
  }),
  copyState: (s) => ({ ...s, params: s.params.slice(), series: s.series.slice() }),
  token(stream, state) {
    if (stream.sol() && state.parens === 0) {
      state.riskLine = false;
      state.expectName = null;
      state.afterDot = false;
    }
    if (stream.eatSpace()) return null;
    if (stream.match('#') || stream.match('//')) {
      stream.skipToEnd();
      return 'comment';
    }
    if (stream.match(/^\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/)) return 'number';
    const word = stream.match(/^[A-Za-z_]\w*/);
    if (word) {
      const name = word[0];
      if (state.afterDot) {
        state.afterDot = false;
        return 'propertyName';
      }
      if (state.expectName) {
        (state.expectName === 'param' ? state.params : state.series).push(name);
        state.expectName = null;
        return 'variableName.definition';
      }
      const risk = state.riskBlock || state.riskLine;
      if (risk && RISK_SET.has(name)) return 'propertyName';
      if (risk && name === 'quote') return 'unit';
      const kw = TOKEN_FOR_KEYWORD[name];
      if (kw) {
        if (name === 'param' || name === 'let') state.expectName = name;
        if (name === 'risk') state.riskLine = true;
        return kw;
      }
      if (state.params.includes(name)) return 'variableName.special';
      if (state.series.includes(name)) return 'variableName.local';
      if (FIELD_SET.has(name)) return 'variableName.standard';
      if (FUNC_BY_NAME.has(name) || HELPER_BY_NAME.has(name)) return 'variableName.function';
      return 'variableName';
    }
    state.afterDot = false;
    if (stream.match('..')) return 'operator';
    if (stream.match('.')) {
      state.afterDot = true;
      return 'derefOperator';
    }
    if (stream.match(/^(?:==|!=|<=|>=|<|>)/)) return 'compareOperator';
    if (stream.match('&&') || stream.match('||') || stream.match('!')) return 'invalid';
    const ch = stream.next();
    switch (ch) {
      case '=':
        return 'definitionOperator';
      case '+':
      case '-':
      case '*':
      case '/':
        return 'arithmeticOperator';
      case '%':
        return 'unit';
      case '(':
      case '[':
        state.parens++;
        return ch === '(' ? 'paren' : 'squareBracket';
      case ')':
      case ']':
        state.parens = Math.max(0, state.parens - 1);
        return ch === ')' ? 'paren' : 'squareBracket';
      case '{':
        if (state.riskLine) state.riskBlock = true;
        return 'brace';
      case '}':
        state.riskBlock = false;
        return 'brace';
      case ',':
        return 'separator';
      case ':':
        return 'punctuation';
      default:
        return 'invalid';
    }
  },
  indent(state, textAfter, cx) {
    let depth = state.parens + (state.riskBlock ? 1 : 0);
    if (/^[)\]}]/.test(textAfter)) depth--;
    return Math.max(0, depth) * cx.unit;
  },
  languageData: {
    commentTokens: { line: '#' },
    closeBrackets: { brackets: ['(', '[', '{'] },
    indentOnInput: /^\s*[)\]}]$/,
  },
};

const strategyLanguage = StreamLanguage.define(strategyParser);

// Colours come from the page's CSS variables (style/main.css), so the editor follows the dark and light
// themes; a page may override any of them with the --code-* variables.
const highlightStyle = HighlightStyle.define([
  { tag: [t.keyword, t.definitionKeyword, t.controlKeyword], color: 'var(--code-keyword, var(--accent))', fontWeight: '600' },
  { tag: t.operatorKeyword, color: 'var(--code-keyword, var(--accent))' },
  { tag: [t.modifier, t.typeName, t.unit], color: 'var(--code-type, color-mix(in srgb, var(--accent) 45%, var(--ok)))' },
  { tag: [t.number, t.bool], color: 'var(--code-number, var(--warn))' },
  { tag: t.comment, color: 'var(--code-comment, var(--muted))', fontStyle: 'italic' },
  { tag: t.function(t.variableName), color: 'var(--code-function, var(--ok))' },
  { tag: t.standard(t.variableName), color: 'var(--code-field, var(--ok))', fontStyle: 'italic' },
  {
    tag: [t.special(t.variableName), t.definition(t.variableName)],
    color: 'var(--code-param, color-mix(in srgb, var(--accent) 50%, var(--down)))',
  },
  { tag: t.local(t.variableName), color: 'var(--code-series, var(--text))', textDecoration: 'underline dotted color-mix(in srgb, var(--text) 35%, transparent)', textUnderlineOffset: '3px' },
  { tag: t.propertyName, color: 'var(--code-property, color-mix(in srgb, var(--accent) 45%, var(--ok)))' },
  { tag: [t.compareOperator, t.arithmeticOperator, t.definitionOperator, t.operator, t.derefOperator], color: 'var(--code-operator, var(--muted))' },
  { tag: [t.paren, t.squareBracket, t.brace, t.separator, t.punctuation], color: 'var(--code-punctuation, var(--muted))' },
  { tag: t.invalid, color: 'var(--down)', textDecoration: 'underline wavy' },
]);

const baseTheme = EditorView.theme({
  '&': {
    color: 'var(--text)',
    backgroundColor: 'var(--bg-sunken)',
    border: '1px solid var(--border)',
    borderRadius: '8px',
    fontSize: '0.92rem',
    fontWeight: '400',
    maxHeight: 'var(--code-max-height, 75vh)',
    textAlign: 'left',
  },
  '&.cm-focused': { outline: '2px solid var(--accent)', outlineOffset: '1px' },
  '.cm-scroller': { fontFamily: 'var(--mono)', lineHeight: '1.55', overflow: 'auto', borderRadius: '8px' },
  '.cm-content': { caretColor: 'var(--text)', padding: '6px 0' },
  '.cm-line': { padding: '0 10px 0 6px' },
  '&.cm-focused .cm-cursor, .cm-cursor': { borderLeftColor: 'var(--text)', borderLeftWidth: '2px' },
  '.cm-gutters': {
    backgroundColor: 'var(--bg-raised)',
    color: 'var(--muted)',
    borderRight: '1px solid var(--border)',
    borderRadius: '8px 0 0 8px',
  },
  '.cm-lineNumbers .cm-gutterElement': { padding: '0 6px 0 10px', minWidth: '2.5em' },
  '.cm-activeLine': { backgroundColor: 'color-mix(in srgb, var(--accent) 7%, transparent)' },
  '.cm-activeLineGutter': { backgroundColor: 'color-mix(in srgb, var(--accent) 14%, transparent)', color: 'var(--text)' },
  '&:not(.cm-focused) .cm-activeLine, &:not(.cm-focused) .cm-activeLineGutter': { backgroundColor: 'transparent' },
  '&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground, .cm-content ::selection':
    { backgroundColor: 'color-mix(in srgb, var(--accent) 32%, transparent) !important' },
  '.cm-matchingBracket, &.cm-focused .cm-matchingBracket': {
    backgroundColor: 'color-mix(in srgb, var(--accent) 22%, transparent)',
    outline: '1px solid color-mix(in srgb, var(--accent) 60%, transparent)',
    color: 'inherit',
  },
  '.cm-nonmatchingBracket, &.cm-focused .cm-nonmatchingBracket': { color: 'var(--down)', backgroundColor: 'transparent' },
  '.cm-placeholder': { color: 'var(--muted)' },
  '.cm-tooltip': {
    backgroundColor: 'var(--bg-raised)',
    color: 'var(--text)',
    border: '1px solid var(--border)',
    borderRadius: '6px',
    boxShadow: 'var(--shadow)',
    fontFamily: 'var(--font)',
  },
  '.cm-tooltip-autocomplete > ul': { fontFamily: 'var(--mono)' },
  '.cm-tooltip-autocomplete > ul > li[aria-selected]': { backgroundColor: 'var(--accent)', color: 'var(--accent-text)' },
  '.cm-tooltip-autocomplete > ul > li[aria-selected] .cm-completionDetail': { color: 'inherit' },
  '.cm-completionDetail': { color: 'var(--muted)', fontStyle: 'normal', marginLeft: '0.6em' },
  '.cm-completionMatchedText': { textDecoration: 'none', fontWeight: '700' },
  '.cm-completionInfo': { padding: '4px 8px', maxWidth: '22rem' },
  '.cm-diagnostic': { padding: '4px 8px' },
  '.cm-diagnostic-error': { borderLeft: '4px solid var(--down)' },
  '.cm-diagnostic-warning': { borderLeft: '4px solid var(--warn)' },
  '.cm-diagnostic-info, .cm-diagnostic-hint': { borderLeft: '4px solid var(--accent)' },
  '.cm-lintRange-error': {
    backgroundImage: 'none',
    textDecoration: 'underline wavy var(--down)',
    textDecorationSkipInk: 'none',
    textUnderlineOffset: '3px',
  },
  '.cm-lintRange-warning': {
    backgroundImage: 'none',
    textDecoration: 'underline wavy var(--warn)',
    textDecorationSkipInk: 'none',
    textUnderlineOffset: '3px',
  },
  '.cm-lintPoint-error:after': { borderBottomColor: 'var(--down)' },
  '.cm-lintPoint-warning:after': { borderBottomColor: 'var(--warn)' },
  '.cm-panels': { backgroundColor: 'var(--bg-raised)', color: 'var(--text)' },
  '.cm-panels.cm-panels-bottom': { borderTop: '1px solid var(--border)' },
  '.cm-panel.cm-panel-lint ul [aria-selected]': { backgroundColor: 'color-mix(in srgb, var(--accent) 25%, transparent)' },
  '.cm-panel.cm-panel-lint ul:focus [aria-selected]': { backgroundColor: 'var(--accent)', color: 'var(--accent-text)' },
});

// ---------------------------------------------------------------------------------------------------------
// Completion: keywords, indicators (with their parameters and outputs), helpers, price fields, risk settings
// and the names declared in the document.

function signature(f) {
  const args = f.params.map(([name, , def]) => `${name} = ${def}`);
  if (f.series) args.unshift('series');
  return `(${args.join(', ')})`;
}

const STATIC_COMPLETIONS = [
  ...Object.keys(TOKEN_FOR_KEYWORD)
    .filter((k) => k !== 'short')
    .map((label) => ({ label, type: 'keyword' })),
  { label: 'entry long when', type: 'keyword', apply: 'entry long when ', boost: 1 },
  { label: 'exit long when', type: 'keyword', apply: 'exit long when ', boost: 1 },
  ...FUNCS.map((f) => ({
    label: f.name,
    type: 'function',
    detail: signature(f),
    info: f.summary + (f.outputs.length ? ` · outputs: ${f.outputs.map((o) => '.' + o).join(', ')}` : ''),
  })),
  ...HELPERS.map((h) => ({
    label: h.name,
    type: 'function',
    detail: `(${['a', 'b', 'c'].slice(0, h.arity).join(', ')})`,
    info: h.summary,
  })),
  ...FIELDS.map((label) => ({ label, type: 'variable', detail: 'price field' })),
];
const RISK_COMPLETIONS = RISK_SETTINGS.map((label) => ({ label, type: 'property', detail: 'risk setting' }))
  .concat([{ label: 'quote', type: 'keyword', detail: 'size unit' }]);

function declaredNames(doc) {
  const out = [];
  const re = /^[ \t]*(param|let)[ \t]+([A-Za-z_]\w*)/gm;
  for (const m of doc.toString().matchAll(re)) {
    out.push({ label: m[2], type: 'variable', detail: m[1] === 'param' ? 'parameter' : 'series', boost: 2 });
  }
  return out;
}

function completeStrategy(context) {
  const node = syntaxTree(context.state).resolveInner(context.pos, -1);
  if (node.name === 'comment') return null;
  const line = context.state.doc.lineAt(context.pos);
  const before = line.text.slice(0, context.pos - line.from);
  // `indicator(...).output`
  const dot = /\)\.(\w*)$/.exec(before);
  if (dot) {
    let depth = 0;
    let i = dot.index;
    for (; i >= 0; i--) {
      if (before[i] === ')') depth++;
      else if (before[i] === '(' && --depth === 0) break;
    }
    const fname = i > 0 && /([A-Za-z_]\w*)\s*$/.exec(before.slice(0, i));
    const f = fname && FUNC_BY_NAME.get(fname[1]);
    if (!f || !f.outputs.length) return null;
    return {
      from: context.pos - dot[1].length,
      options: f.outputs.map((o, k) => ({ label: o, type: 'property', detail: k === 0 ? 'default output' : f.name })),
      validFor: /^\w*$/,
    };
  }
  if (/\b(?:param|let)\s+\w*$/.test(before)) return null; // a new name is being declared
  const word = context.matchBefore(/[A-Za-z_]\w*/);
  if (!word && !context.explicit) return null;
  const inRisk = /^\s*risk\b/.test(line.text) || strategyInRiskBlock(context.state, line.from);
  return {
    from: word ? word.from : context.pos,
    options: (inRisk ? RISK_COMPLETIONS : []).concat(declaredNames(context.state.doc), STATIC_COMPLETIONS),
    validFor: /^\w*$/,
  };
}

function strategyInRiskBlock(state, lineStart) {
  // Cheap scan: the last `{` before this line opened a risk block that has not been closed.
  const text = state.doc.sliceString(Math.max(0, lineStart - 4000), lineStart);
  const open = text.lastIndexOf('{');
  return open >= 0 && text.indexOf('}', open) < 0 && /risk\s*$/.test(text.slice(0, open));
}

// ---------------------------------------------------------------------------------------------------------
// Diagnostics: the engine's {line, column, len, message} (1-based, counted in characters) to document offsets.

function charsToUnits(text, chars) {
  let i = 0;
  while (chars > 0 && i < text.length) {
    i += text.codePointAt(i) > 0xffff ? 2 : 1;
    chars--;
  }
  return i;
}

function toDiagnostic(doc, d) {
  const message = String((d && d.message) || 'error');
  const severity = ['error', 'warning', 'info', 'hint'].includes(d && d.severity) ? d.severity : 'error';
  const lineNo = Number(d && d.line) || 0;
  if (lineNo < 1) return { from: 0, to: 0, severity, message }; // not tied to a position
  const line = doc.line(Math.min(lineNo, doc.lines));
  const col = Math.max(1, Number(d.column) || 1);
  const from = line.from + charsToUnits(line.text, col - 1);
  const to = from + charsToUnits(line.text.slice(from - line.from), Math.max(0, Number(d.len) || 0));
  return { from, to: Math.min(to, line.to), severity, message };
}

// ---------------------------------------------------------------------------------------------------------
// The editor.

function labelOf(textarea) {
  const own = textarea.getAttribute('aria-label');
  if (own) return own;
  const label = textarea.labels && textarea.labels[0];
  const text = label && label.textContent.replace(/\s+/g, ' ').trim();
  return text || 'Strategy source';
}

/**
 * Replaces `textarea` (kept, hidden, as the form field and source of truth) with an editor inserted after it.
 * options: diagnostics (initial list), onChange(text, editor), minLines, autocomplete (default true),
 * readOnly (default: the textarea's readonly/disabled).
 * Returns { view, textarea, getValue(), setValue(text), setDiagnostics(list), focus(), destroy() }.
 */
function create(textarea, options) {
  if (!textarea || textarea.tagName !== 'TEXTAREA') throw new Error('VortexEditorLib.create needs a <textarea>');
  const opts = options || {};
  const readOnly = opts.readOnly != null ? !!opts.readOnly : textarea.readOnly || textarea.disabled;
  const minLines = Math.max(3, opts.minLines || (textarea.getAttribute('rows') ? textarea.rows : 12));
  const describedBy = [textarea.getAttribute('aria-describedby'), textarea.dataset.status].filter(Boolean).join(' ');
  const editable = new Compartment();
  let api;

  const contentAttrs = { 'aria-label': labelOf(textarea) };
  if (describedBy) contentAttrs['aria-describedby'] = describedBy;
  if (textarea.getAttribute('aria-invalid')) contentAttrs['aria-invalid'] = textarea.getAttribute('aria-invalid');

  const extensions = [
    lineNumbers(),
    highlightActiveLineGutter(),
    highlightSpecialChars(),
    history(),
    drawSelection(),
    EditorState.allowMultipleSelections.of(false),
    indentUnit.of('  '),
    EditorState.tabSize.of(2),
    indentOnInput(),
    strategyLanguage,
    syntaxHighlighting(highlightStyle),
    bracketMatching(),
    highlightActiveLine(),
    lintGutter(),
    EditorView.lineWrapping,
    EditorView.contentAttributes.of(contentAttrs),
    baseTheme,
    EditorView.theme({ '.cm-content, .cm-gutter': { minHeight: `${(minLines * 1.55).toFixed(2)}em` } }),
    editable.of([EditorState.readOnly.of(readOnly), EditorView.editable.of(!readOnly)]),
    EditorView.updateListener.of((u) => {
      if (!u.docChanged) return;
      const text = u.state.doc.toString();
      textarea.value = text;
      textarea.dispatchEvent(new Event('input', { bubbles: true }));
      if (typeof opts.onChange === 'function') opts.onChange(text, api);
    }),
  ];
  const keys = [...defaultKeymap, ...historyKeymap, ...lintKeymap, indentWithTab];
  if (opts.autocomplete !== false) {
    extensions.push(closeBrackets(), autocompletion({ override: [completeStrategy], icons: false }));
    keys.unshift(...closeBracketsKeymap, ...completionKeymap);
  }
  extensions.push(keymap.of(keys));
  if (textarea.placeholder) extensions.push(placeholderExt(textarea.placeholder));

  const view = new EditorView({
    state: EditorState.create({ doc: textarea.value, extensions }),
  });
  view.dom.classList.add('strategy-editor');
  textarea.insertAdjacentElement('afterend', view.dom);
  textarea.hidden = true;
  textarea.style.display = 'none';
  textarea.setAttribute('aria-hidden', 'true');

  // The hidden textarea's labels and validation point at the editor instead.
  const focusEditor = (e) => {
    if (e && e.target && view.dom.contains(e.target)) return;
    view.focus();
  };
  const labels = Array.from(textarea.labels || []);
  labels.forEach((l) => l.addEventListener('click', focusEditor));
  textarea.addEventListener('invalid', focusEditor);
  const form = textarea.form;
  const onReset = () => setTimeout(() => api && api.setValue(textarea.value), 0);
  if (form) form.addEventListener('reset', onReset);

  api = {
    view,
    textarea,
    getValue: () => view.state.doc.toString(),
    setValue(text) {
      const value = String(text == null ? '' : text);
      if (value === view.state.doc.toString()) return;
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: value } });
    },
    setDiagnostics(list) {
      const doc = view.state.doc;
      const diagnostics = (Array.isArray(list) ? list : []).map((d) => toDiagnostic(doc, d));
      view.dispatch(setLintDiagnostics(view.state, diagnostics));
    },
    setReadOnly(on) {
      view.dispatch({ effects: editable.reconfigure([EditorState.readOnly.of(!!on), EditorView.editable.of(!on)]) });
    },
    focus: () => view.focus(),
    destroy() {
      labels.forEach((l) => l.removeEventListener('click', focusEditor));
      textarea.removeEventListener('invalid', focusEditor);
      if (form) form.removeEventListener('reset', onReset);
      view.destroy();
      view.dom.remove();
      textarea.hidden = false;
      textarea.style.display = '';
      textarea.removeAttribute('aria-hidden');
    },
  };
  if (Array.isArray(opts.diagnostics)) api.setDiagnostics(opts.diagnostics);
  return api;
}

window.VortexEditorLib = { create, version: VERSION };
