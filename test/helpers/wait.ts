// Waiting on a condition instead of a sleep: poll until it holds. The time limit is only a safety
// net that turns a hang into a failure with a message; no test asserts how fast anything happened.

/** Poll `check` every `everyMs` until it returns true; throws naming `what` after `limitMs`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, limitMs = 10_000, everyMs = 10): Promise<void> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`still waiting for ${what} after ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
