import t from 'tap'
import { runCliHere } from './helpers/run-cli.ts'

// The usage lists -c under Options: `portcullis -c x.yaml validate` said only `unknown command "-c"`.
t.test('options before the command: exit 2, saying the line that would do (options go after the command)', async t => {
  const first = await runCliHere('-c', 'x.yaml', 'validate')
  t.same([first.code, first.stdout, first.stderr.split('\n')[0]], [2, '', 'portcullis: options go after the command: portcullis validate -c x.yaml'])
  t.match(first.stderr, /^Usage: portcullis <command> \[options\]$/m, 'with the usage')
  const long = await runCliHere('--config=my gateway.yaml', 'routes', '--json')
  t.equal(long.stderr.split('\n')[0], 'portcullis: options go after the command: portcullis routes \'--config=my gateway.yaml\' --json', 'quoted as a shell reads it')
  const none = await runCliHere('-c', 'x.yaml')
  t.same([none.code, none.stderr.split('\n')[0]], [2, 'portcullis: options go after the command: portcullis <command> -c x.yaml'], 'no command given: where it goes')
})
