// Every command, by id. oclif's "explicit" strategy reads this map instead of scanning a directory,
// so the .ts sources load as they are (Node strips the types) with no manifest or build step.
// Command files import only @oclif/core and ./base.ts (tasks: also ./task-format.ts; cards and names: ./card-format.ts; threads: ./thread-format.ts) at the top; their heavy imports happen inside run().
import Ack from './commands/ack.ts';
import AppendEntries from './commands/append-entries.ts';
import AppendEntry from './commands/append-entry.ts';
import CancelTask from './commands/cancel-task.ts';
import Config from './commands/config.ts';
import Connect from './commands/connect.ts';
import CreateTask from './commands/create-task.ts';
import CreateThread from './commands/create-thread.ts';
import Disconnect from './commands/disconnect.ts';
import FindAgents from './commands/find-agents.ts';
import GetAgentCard from './commands/get-agent-card.ts';
import GetInbox from './commands/get-inbox.ts';
import GetTask from './commands/get-task.ts';
import GetThread from './commands/get-thread.ts';
import GetThreadEntries from './commands/get-thread-entries.ts';
import Health from './commands/health.ts';
import Identity from './commands/identity.ts';
import IncomingTasks from './commands/incoming-tasks.ts';
import Info from './commands/info.ts';
import JoinThread from './commands/join-thread.ts';
import ListTasks from './commands/list-tasks.ts';
import ListThreads from './commands/list-threads.ts';
import NameClaim from './commands/name/claim.ts';
import NameList from './commands/name/list.ts';
import NameRelease from './commands/name/release.ts';
import NameResolve from './commands/name/resolve.ts';
import Outbox from './commands/outbox.ts';
import Peers from './commands/peers.ts';
import Ping from './commands/ping.ts';
import PublishCard from './commands/publish-card.ts';
import PublishEvent from './commands/publish-event.ts';
import Replay from './commands/replay.ts';
import SendMessage from './commands/send-message.ts';
import Start from './commands/start.ts';
import Status from './commands/status.ts';
import Stop from './commands/stop.ts';
import Streams from './commands/streams.ts';
import SubscribeInbox from './commands/subscribe-inbox.ts';
import SubscribeTaskEvents from './commands/subscribe-task-events.ts';
import SubscribeThread from './commands/subscribe-thread.ts';
import UpdateTask from './commands/update-task.ts';
import VerifyThread from './commands/verify-thread.ts';
import Version from './commands/version.ts';
import WaitTask from './commands/wait-task.ts';
import WithdrawCard from './commands/withdraw-card.ts';

export const COMMANDS = {
  start: Start,
  stop: Stop,
  identity: Identity,
  info: Info,
  health: Health,
  peers: Peers,
  status: Status,
  version: Version,
  config: Config,
  ping: Ping,
  connect: Connect,
  disconnect: Disconnect,
  'send-message': SendMessage,
  'get-inbox': GetInbox,
  'subscribe-inbox': SubscribeInbox,
  ack: Ack,
  outbox: Outbox,
  'create-task': CreateTask,
  'get-task': GetTask,
  'list-tasks': ListTasks,
  'wait-task': WaitTask,
  'cancel-task': CancelTask,
  'update-task': UpdateTask,
  'publish-event': PublishEvent,
  'subscribe-task-events': SubscribeTaskEvents,
  'incoming-tasks': IncomingTasks,
  streams: Streams,
  replay: Replay,
  'publish-card': PublishCard,
  'get-agent-card': GetAgentCard,
  'find-agents': FindAgents,
  'withdraw-card': WithdrawCard,
  'create-thread': CreateThread,
  'get-thread': GetThread,
  'list-threads': ListThreads,
  'join-thread': JoinThread,
  'append-entry': AppendEntry,
  'append-entries': AppendEntries,
  'get-thread-entries': GetThreadEntries,
  'subscribe-thread': SubscribeThread,
  'verify-thread': VerifyThread,
  'name:claim': NameClaim,
  'name:resolve': NameResolve,
  'name:release': NameRelease,
  'name:list': NameList,
};
