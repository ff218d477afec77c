import t from 'tap'
import { rateLimitCases } from '../../test/helpers/rate-limit-cases.ts'

// The memory store: the same script logic as on Redis, run in process.
rateLimitCases(t, () => ({ stores: '', name: 'memory' }))
