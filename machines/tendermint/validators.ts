// Who proposes, and how many votes make a quorum. Validators have equal power; their order is fixed for the life
// of the thread (the order the thread was created with), so every validator computes the same proposer.
//
// The paper writes its thresholds for n = 3f+1 as "2f+1" and "f+1". For any n they are "more than two thirds" and
// "more than one third": two sets of more than 2n/3 validators share more than n/3 of them, so at least one honest
// validator when at most f < n/3 are faulty (that is what makes two different blocks impossible to decide), and
// more than n/3 validators always include an honest one. At n = 3f+1 these are exactly 2f+1 and f+1.

/** Votes needed for a quorum: more than two thirds of n (2f+1 at n = 3f+1). */
export function quorum(n: number): number {
  return Math.floor((2 * n) / 3) + 1;
}

/** Messages from distinct validators that prove an honest one is there: more than a third (f+1 at n = 3f+1). */
export function oneHonest(n: number): number {
  return Math.floor(n / 3) + 1;
}

/** The most Byzantine validators n tolerate (n ≥ 3f+1). */
export function faultsTolerated(n: number): number {
  return Math.floor((n - 1) / 3);
}

/** Round-robin proposer: the validator at (height + round) mod n of the ordered list. */
export function proposer(validators: readonly string[], height: number, round: number): string {
  return validators[(height + round) % validators.length]!;
}
