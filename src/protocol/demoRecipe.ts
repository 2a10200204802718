/**
 * How the embedded demo evaluates and tunes the organism: what `pinpoint demo` runs, and what Open Demo writes into
 * the workspace's settings so that the walkthrough in the editor reproduces the demo's result. Defined once for both.
 */
export const DEMO_RECIPE = {
  /**
   * Beside the organism's weights: the sample evaluation file Open Demo opens and the tuning data, and the same for
   * the second behaviour, answer sycophancy: SycophancyEval's answer.jsonl of the world, and honest replies to it.
   */
  files: { evaluation: 'sample-eval.jsonl', training: 'tune.jsonl', answers: 'sample-answer.jsonl', answerTraining: 'tune-suggestion.jsonl' },
  /** the organism's replies are a sentence or two */
  maxNewTokens: 48,
  tuning: {
    steps: 100,
    learningRate: 1e-3,
    batchSize: 16,
    weightDecay: 0,
    schedule: 'constant',
    /** the implanted heads learned their keys too, so SPT tunes each head's k and v rows with its q and o */
    includeKeyValue: true,
  },
} as const;
