// ESLint (flat config) for the browser code served by Django's staticfiles and its Node tests.
import js from "@eslint/js";
import globals from "globals";

const browserScript = {
  ...globals.browser,
  // Django's JavaScript catalog (jsi18n) and the vendor scripts the pages load first.
  gettext: "readonly",
  ngettext: "readonly",
  interpolate: "readonly",
  get_format: "readonly",
  cornerstone: "readonly",
  Chart: "readonly",
};

export default [
  { ignores: ["node_modules/", "staticfiles/", ".venv/", "test-artifacts/"] },
  js.configs.recommended,
  {
    // The editor: native ES modules.
    files: ["static/editor/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: browserScript },
  },
  {
    // The other pages' scripts: classic scripts (one IIFE each).
    files: ["static/**/*.js", "*/static/**/*.js"],
    ignores: ["static/editor/**"],
    languageOptions: { ecmaVersion: 2022, sourceType: "script", globals: browserScript },
  },
  {
    files: ["tests/js/**/*.js", "eslint.config.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: globals.node },
  },
];
