// Lint rules for every TypeScript file of the project: typescript-eslint's recommended set, with formatting left to
// prettier (.prettierrc.json). Both run in `npm test`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'models/', 'test/fixtures/reference/', '.gpu/', 'out/', 'demo-out/', 'test-results/', '.exp/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // unused values are tsc's to report (noUnusedLocals, noUnusedParameters); `_`-prefixed ones are deliberate
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['**/*.mjs', 'scripts/**'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
