// The Ext service: pub/sub, webhooks and networks are designed in proto/ and answer UNIMPLEMENTED for now.
import type { ExtServer } from '../../proto/gen/moltmesh/v1/ext.ts';
import { unimplemented } from './rpc.ts';

export function extHandlers(): ExtServer {
  const pubsub = 'pub/sub topics are';
  const webhooks = 'webhooks are';
  const networks = 'networks are';
  return {
    publish: unimplemented(pubsub, 'Ext.Publish'),
    subscribeTopic: unimplemented(pubsub, 'Ext.SubscribeTopic'),
    listTopics: unimplemented(pubsub, 'Ext.ListTopics'),

    createWebhook: unimplemented(webhooks, 'Ext.CreateWebhook'),
    listWebhooks: unimplemented(webhooks, 'Ext.ListWebhooks'),
    deleteWebhook: unimplemented(webhooks, 'Ext.DeleteWebhook'),
    testWebhook: unimplemented(webhooks, 'Ext.TestWebhook'),

    createNetwork: unimplemented(networks, 'Ext.CreateNetwork'),
    getNetwork: unimplemented(networks, 'Ext.GetNetwork'),
    listNetworks: unimplemented(networks, 'Ext.ListNetworks'),
    addMember: unimplemented(networks, 'Ext.AddMember'),
    removeMember: unimplemented(networks, 'Ext.RemoveMember'),
    joinNetwork: unimplemented(networks, 'Ext.JoinNetwork'),
    leaveNetwork: unimplemented(networks, 'Ext.LeaveNetwork'),
    broadcast: unimplemented(networks, 'Ext.Broadcast'),
    subscribeNetwork: unimplemented(networks, 'Ext.SubscribeNetwork'),
  };
}
