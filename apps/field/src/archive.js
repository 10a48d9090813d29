// The archive's fields a change on the phone touches, flat (guardian.name ...), to compare versions.
export const FIELDS = ['guardian.name', 'guardian.relationship', 'guardian.phone', 'father.status', 'mother.status', 'archive_status']

export function flat(archive) {
  const out = {}
  for (const field of FIELDS) {
    const [head, tail] = field.split('.')
    const part = archive?.[head]
    if (part === undefined || (tail && part && !(tail in part))) continue  // not in this archive or change
    out[field] = tail ? (part?.[tail] ?? null) : part
  }
  return out
}
