// The vault's one error: a value it cannot decrypt, a key it does not have, a purpose it does not
// know. Never caught to return something else: a caller that gets garbage is worse than one that fails.
export class VaultError extends Error {
  override name = "VaultError";
}
