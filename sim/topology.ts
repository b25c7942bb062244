// The shape of a simulated commune: owners on a ring, each listing its neighbours
// (mutually) plus a few longer chords, so clusters overlap without being one big
// cluster. Who follows whom follows cluster formation (src/cluster/formation.ts): a
// meshlet covers its own owner and the owners it lists, and follows one hop further
// (the owners a covered owner lists), with their meshlets.

export interface Topology {
  owners: number
  /** Owner index of each meshlet. */
  ownerOf: number[]
  /** Mutual member lists, per owner (never itself). */
  members: Set<number>[]
  /** Owners whose work a meshlet of this owner ranks and may run: itself and its members. */
  covered: Set<number>[]
  /** Meshlets that follow the repos of this owner and of its meshlets (formation's two hops). */
  followers: number[][]
  meshletsOf: number[][]
}

export function buildTopology(meshlets: number, rand: () => number): Topology {
  const owners = Math.max(3, Math.round(meshlets / 3.33))
  const radius = Math.max(1, Math.min(5, Math.floor((owners - 1) / 2)))
  const members = Array.from({ length: owners }, () => new Set<number>())
  const link = (a: number, b: number) => {
    if (a === b) return
    members[a].add(b)
    members[b].add(a)
  }
  for (let o = 0; o < owners; o++) {
    for (let d = 1; d <= radius; d++) link(o, (o + d) % owners)
    // a longer chord now and then: clusters overlap in more than one direction
    if (owners > 4 * radius && rand() < 0.3) link(o, (o + radius + 1 + Math.floor(rand() * radius)) % owners)
  }
  const ownerOf = Array.from({ length: meshlets }, (_, i) => i % owners)
  const meshletsOf = Array.from({ length: owners }, () => [] as number[])
  ownerOf.forEach((o, i) => meshletsOf[o].push(i))
  const covered = members.map((ms, o) => new Set([o, ...ms]))
  const followers = covered.map((cov) => {
    const reach = new Set<number>()
    for (const c of cov) for (const x of covered[c]) reach.add(x)
    return [...reach].sort((a, b) => a - b).flatMap((o) => meshletsOf[o])
  })
  return { owners, ownerOf, members, covered, followers, meshletsOf }
}
