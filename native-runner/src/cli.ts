import { parseArgs } from 'node:util';
import { runCase } from './conformance/runConformance';
import { greedyGenerate } from './runtime/generate';
import { Model } from './runtime/model';
import { serve } from './server';
import { count, device, dtype, required, UsageError } from './cliOptions';
import { TUNE_USAGE, tuneCommand } from './training/tuneCommand';
import { LOCATE_USAGE, locateCommand } from './localisation/locateCommand';
import { KNOCKOUT_USAGE, knockoutCommand } from './localisation/knockoutCommand';
import { buildOrganismCommand, DEMO_USAGE, demoCommand } from './organism/demoCommand';
import { EVAL_USAGE, evalCommand } from './evaluation/evalCommand';

/** `pinpoint <command>`: the runner's command line, for headless use and CI. */

const USAGE = `usage: pinpoint <command> [options]

commands:
  conformance <case-dir>...   check the runtime against reference cases (one JSON line per case)
      [--device auto|cpu|cuda] [--dtype float32|float16|bfloat16]
  info --model <dir>          describe a checkpoint and where it runs
      [--device auto|cpu|cuda] [--dtype float32|float16|bfloat16]
  generate --model <dir> (--prompt <text> | --chat <user message>)
      [--max-new-tokens N] [--device auto|cpu|cuda] [--dtype float32|float16|bfloat16]
  ${EVAL_USAGE.replace(/\n/g, '\n  ')}
  ${TUNE_USAGE.replace(/\n/g, '\n  ')}
  ${LOCATE_USAGE.replace(/\n/g, '\n  ')}
  ${KNOCKOUT_USAGE.replace(/\n/g, '\n  ')}
  ${DEMO_USAGE.replace(/\n/g, '\n  ')}
  serve                       speak JSON-RPC on stdin/stdout (used by the VS Code extension)
`;

const DEVICE_DTYPE = {
  device: { type: 'string', default: 'auto' },
  dtype: { type: 'string', default: 'float32' },
} as const;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'conformance': return conformance(rest);
    case 'info': return info(rest);
    case 'generate': return generate(rest);
    case 'eval': return evalCommand(rest);
    case 'tune': return tuneCommand(rest);
    case 'locate': return locateCommand(rest);
    case 'knockout': return knockoutCommand(rest);
    case 'demo': return demoCommand(rest);
    case 'build-organism': return buildOrganismCommand(rest);
    case 'serve': return serve();
    case undefined: case '--help': case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 1 : 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
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
    options: { model: { type: 'string' }, prompt: { type: 'string' }, chat: { type: 'string' }, 'max-new-tokens': { type: 'string', default: '32' }, ...DEVICE_DTYPE },
  });
  const model = Model.load(required(values.model, '--model'), { device: device(values.device), dtype: dtype(values.dtype) });
  if ((values.prompt === undefined) === (values.chat === undefined)) throw new UsageError('give exactly one of --prompt and --chat');
  const ids = values.chat !== undefined
    ? model.tokenizer.encodeChat([{ role: 'user', content: values.chat }], { addGenerationPrompt: true })
    : model.tokenizer.encode(values.prompt!);
  const [out] = await greedyGenerate(model, [ids], { maxNewTokens: count(values['max-new-tokens']!, '--max-new-tokens') });
  process.stdout.write(`${model.tokenizer.decode(out, { skipSpecialTokens: true })}\n`);
  await model.dispose();
  return 0;
}


main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (error: Error) => {
    const usage = error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`pinpoint: ${error.message}\n${usage ? `\n${USAGE}` : ''}`);
    process.exitCode = usage ? 2 : 1;
  },
);
