/** The first value of a header Node may give as a list (most are single, a few repeat). */
export const firstValue = (v: string | string[] | undefined): string | undefined => Array.isArray(v) ? v[0] : v
