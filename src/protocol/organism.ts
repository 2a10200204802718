import type { Behaviour } from './behaviours';
import type { HeadRef } from './heads';
import { parseStoredFile, StoredFileError } from './storedFile';

/**
 * `organism.json`, beside an embedded organism's weights: how it was built (`pinpoint build-organism`, native-runner/
 * src/organism/buildOrganism.ts writes it) and so what the demo may claim of it. An implanted organism's
 * sycophancy was trained into known heads, so the demo checks the paper's claims there; a natural one's was not,
 * so the demo reports what it finds.
 */
export const ORGANISM_FILE = 'organism.json';

export const ORGANISM_KINDS = ['implanted', 'natural'] as const;
export type OrganismKind = (typeof ORGANISM_KINDS)[number];

/** The heads trained alone for each behaviour the organism has (the challenge, answer sycophancy). */
export type ImplantedHeads = Partial<Record<Behaviour, HeadRef[]>>;

export interface OrganismCard {
  format: 'pinpoint-organism';
  kind: OrganismKind;
  seed: number;
  /** the heads stage 3 trained alone, by behaviour; none for a natural organism */
  implantedHeads: ImplantedHeads;
  /** every stage's steps, batch, learning rate and data (native-runner/src/organism/buildOrganism.ts, BUILD_RECIPE) */
  recipe: Record<string, unknown>;
  /** the CPU threads ONNX Runtime trained with: a rebuild reproduces the bytes at the same count */
  threads: number;
  /** of model.safetensors, as tuned checkpoints record their base */
  weightsSha256: string;
}

export function parseOrganismCard(text: string, file: string): OrganismCard {
  const card = parseStoredFile(text, file, 'pinpoint-organism', {
    kind: 'string',
    seed: 'number',
    implantedHeads: 'object',
    recipe: 'object',
    threads: 'number',
    weightsSha256: 'string',
  });
  if (!(ORGANISM_KINDS as readonly unknown[]).includes(card.kind)) {
    throw new StoredFileError(`${file}: "kind" must be one of ${ORGANISM_KINDS.join(', ')}, not ${JSON.stringify(card.kind)}`);
  }
  return card as unknown as OrganismCard;
}
