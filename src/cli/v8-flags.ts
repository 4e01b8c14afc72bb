// V8 settings for the `tally` process, applied as the first thing its entry module imports (before
// the server's modules run) so that `npm start`, `npx tally` and any other launcher get them alike.
// (Settings V8 reads only when it creates the heap are in node-flags.ts.)
//
// Allocation-site pretenuring off. V8 watches which allocation sites' objects survive young-
// generation collections and may start allocating a site's objects in the old generation. Under
// HTTP load about two Tally processes in five got into a state (session 13, docs/benchmarks.md)
// where every request left ~5.6 KB to be copied and promoted: each young-generation collection
// took 3-4 ms instead of 0.5, a full collection ran every 100-200 ms, and the process served a
// third fewer single-transfer requests for the rest of its life. Without pretenuring, none of the
// processes measured did. Tally's heap is short-lived request objects around a few long-lived
// caches, the shape for which pretenuring has least to give.
import { setFlagsFromString } from "node:v8";

setFlagsFromString("--no-allocation-site-pretenuring");
