import { parseArgs } from 'node:util';
import { runCase } from './conformance/runConformance';
import { greedyGenerate } from './runtime/generate';
import { Model } from './runtime/model';
import { serve, SERVE_USAGE } from './server';
import { count, device, DEVICE_USAGE, dtype, DTYPE_USAGE, required, UsageError } from './cliOptions';
import { TUNE_USAGE, tuneCommand } from './training/tuneCommand';
import { LOCATE_USAGE, locateCommand } from './localisation/locateCommand';
import { KNOCKOUT_USAGE, knockoutCommand } from './localisation/knockoutCommand';
import { buildOrganismCommand, DEMO_USAGE, demoCommand } from './organism/demoCommand';
import { EVAL_USAGE, evalCommand } from './evaluation/evalCommand';
import { exportTuned } from './checkpoint/exportTuned';
import { COMPARE_USAGE, compareCommand } from './comparison/compareCommand';

/** `pinpoint <command>`: the runner's command line, for headless use and CI. */

interface Command {
  /** its options and a line of what it does, as `pinpoint <command> --help` prints them */
  usage: string;
  run: (args: string[]) => Promise<number>;
}

const DEVICE_DTYPE_USAGE = `${DEVICE_USAGE} ${DTYPE_USAGE}`;

const EXPORT_USAGE = `export --run <tuning run folder> --to <empty or missing folder>
    copy the run's newest checkpoint, less the optimizer state that only resuming needs: a Hub checkpoint`;

/** In the order the overall usage lists them. */
const COMMANDS: Record<string, Command> = {
  conformance: {
    usage: `conformance <case-dir>... ${DEVICE_DTYPE_USAGE}\n    check the runtime against reference cases (one JSON line per case)`,
    run: conformance,
  },
  info: { usage: `info --model <dir> ${DEVICE_DTYPE_USAGE}\n    describe a checkpoint and where it runs`, run: info },
  generate: {
    usage: `generate --model <dir> (--prompt <text> | --chat <user message>)\n    [--max-new-tokens N] ${DEVICE_DTYPE_USAGE}\n    greedy continuation of a prompt or a chat message`,
    run: generate,
  },
  eval: { usage: EVAL_USAGE, run: evalCommand },
  tune: {
    usage: described(TUNE_USAGE, 'tune the given heads (or every attention weight, or every weight) on conversations; checkpoints in <out>'),
    run: tuneCommand,
  },
  locate: {
    usage: described(LOCATE_USAGE, 'score every head by how far patching it moves the model towards caving in; <out>/heads.json'),
    run: locateCommand,
  },
  knockout: {
    usage: described(KNOCKOUT_USAGE, 'evaluate with the heads ablated (zero, mean) and with random heads; <out>/knockout.json'),
    run: knockoutCommand,
  },
  compare: { usage: COMPARE_USAGE, run: compareCommand },
  export: { usage: EXPORT_USAGE, run: exportCommand },
  demo: { usage: usageOf('demo', DEMO_USAGE), run: demoCommand },
  'build-organism': { usage: usageOf('build-organism', DEMO_USAGE), run: buildOrganismCommand },
  serve: { usage: SERVE_USAGE, run: serve },
};

const USAGE = `usage: pinpoint <command> [options]
       pinpoint <command> --help

commands:
${Object.values(COMMANDS)
  .map(({ usage }) => `  ${usage.replace(/\n/g, '\n  ')}\n`)
  .join('')}`;

/** The usage texts of tune, locate and knockout list only options; `--help` adds what the command does. */
function described(usage: string, description: string): string {
  return `${usage}\n    ${description}`;
}

/** One command's block of a usage text that describes several, each starting at an unindented line. */
function usageOf(command: string, text: string): string {
  return text.split(/\n(?=\S)/).find((block) => block.startsWith(`${command} `)) ?? text;
}

const DEVICE_DTYPE = {
  device: { type: 'string', default: 'auto' },
  dtype: { type: 'string', default: 'float32' },
} as const;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    process.stdout.write(USAGE);
    return name === undefined ? 1 : 0;
  }
  // own properties only: `pinpoint toString` is no command
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) throw new UsageError(`unknown command "${name}"`);
  // answered here, once, so that no command has to declare the option
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: pinpoint ${command.usage}\n`);
    return 0;
  }
  return command.run(rest);
}

async function conformance(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: DEVICE_DTYPE, allowPositionals: true });
  if (positionals.length === 0) throw new UsageError('conformance needs at least one case folder');
  let ok = true;
  for (const dir of positionals) {
    const result = await runCase(dir, { device: device(values.device), dtype: dtype(values.dtype) });
    process.stdout.write(`${JSON.stringify(result)}\n`);
    ok &&= result.pass;
  }
  return ok ? 0 : 1;
}

async function info(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { model: { type: 'string' }, ...DEVICE_DTYPE } });
  const model = Model.load(required(values.model, '--model'), { device: device(values.device), dtype: dtype(values.dtype) });
  const placement = await model.placement();
  process.stdout.write(`${JSON.stringify({ config: model.config, placement }, null, 2)}\n`);
  await model.dispose();
  return 0;
}

async function generate(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      prompt: { type: 'string' },
      chat: { type: 'string' },
      'max-new-tokens': { type: 'string', default: '32' },
      ...DEVICE_DTYPE,
    },
  });
  const model = Model.load(required(values.model, '--model'), { device: device(values.device), dtype: dtype(values.dtype) });
  if ((values.prompt === undefined) === (values.chat === undefined)) throw new UsageError('give exactly one of --prompt and --chat');
  const ids =
    values.chat !== undefined
      ? model.tokenizer.encodeChat([{ role: 'user', content: values.chat }], { addGenerationPrompt: true })
      : model.tokenizer.encode(values.prompt!);
  const [out] = await greedyGenerate(model, [ids], { maxNewTokens: count(values['max-new-tokens']!, '--max-new-tokens') });
  process.stdout.write(`${model.tokenizer.decode(out, { skipSpecialTokens: true })}\n`);
  await model.dispose();
  return 0;
}

async function exportCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { run: { type: 'string' }, to: { type: 'string' } } });
  const exported = exportTuned(required(values.run, '--run'), required(values.to, '--to'));
  process.stderr.write(`exported ${exported.from}: ${exported.files.join(', ')}\n`);
  process.stdout.write(`${exported.to}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    const usage = error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`pinpoint: ${error.message}\n${usage ? `\n${USAGE}` : ''}`);
    process.exitCode = usage ? 2 : 1;
  },
);
