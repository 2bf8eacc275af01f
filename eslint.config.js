// ESLint flat config: recommended JS + typescript-eslint rules; formatting is prettier's job.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "**/build/", "coverage/", "docs/benchmarks/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: "readonly", console: "readonly", Buffer: "readonly", URL: "readonly" },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-constant-condition": ["error", { checkLoops: false }],
    },
  },
  {
    // Set-up code reads as named phases (docs/architecture.md): no function over 80 lines where
    // programs are planned, started and measured, nor in the servers and the dispatcher.
    files: [
      "cli/**/*.ts",
      "cluster/**/*.ts",
      "bench/**/*.ts",
      "loadgen/**/*.ts",
      "server/**/*.ts",
      "dispatcher/**/*.ts",
      "origin/**/*.ts",
      "testbed/**/*.ts",
    ],
    ignores: ["**/*.test.ts", "**/*testing.ts"],
    rules: { "max-lines-per-function": ["error", { max: 80, skipBlankLines: false, skipComments: false }] },
  },
);
