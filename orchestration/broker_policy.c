/*
 * HomeCall's broker policy plugin for Mosquitto 2.0 (plugin API v5).
 *
 * Mosquitto 2.0's acl_file cannot refuse a subscription (its subscribe check always
 * succeeds; read access is checked only when a message is delivered), cannot see the retain
 * flag and has no per-topic size limit. This plugin adds what the acl_file cannot do, for
 * every username that is not one of central's identities (i.e. every gateway):
 *
 *   - CONNECT: the client id must be exactly <gateway_client_id_prefix><username> (gw-<id>),
 *     so no login can take over another client's session (central's or another gateway's)
 *     or wipe it with clean start: each gateway login has one client id, no two logins share
 *     one, and none is central's;
 *   - SUBSCRIBE: only the exact topics <root>/<username>/plan, .../cmd and .../ack
 *     (no wildcards, no $share/...), refused with reason code 0x87 otherwise;
 *   - PUBLISH: only <root>/<username>/events and .../status, payload at most
 *     max_gateway_payload bytes, and never retained on events;
 *   - PUBLISH rate: a token bucket per gateway login (publish_burst messages, refilled at
 *     publish_rate a second); a publish beyond it is refused (PUBACK 0x87), so one login
 *     cannot flood central's queue: a gateway keeps every refused event in its journal and
 *     sends it again after a back-off. A rate of 0 turns the limit off.
 *
 * Everything it does not refuse it defers to the password_file and acl_file, which still
 * apply. Options (plugin_opt_...): topic_root, central_users (space separated),
 * gateway_client_id_prefix, max_gateway_payload (bytes), publish_rate (messages a second),
 * publish_burst (messages).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define MAX_CENTRAL_USERS 16
#define SPARE_STATUS_EVERY_S 5.0

static mosquitto_plugin_id_t *plugin_id = NULL;
static char *topic_root = NULL;
static char *client_id_prefix = NULL;
static char *central_users[MAX_CENTRAL_USERS];
static int central_user_count = 0;
static uint32_t max_gateway_payload = 32768;
static double publish_rate = 0.0;
static double publish_burst = 0.0;

/* One token bucket per gateway login, in an open-addressing table keyed by username. Entries
 * live as long as the broker (one per gateway that has published: logins are enrolled, so
 * the table is bounded by the fleet) and survive reconnects, so reconnecting does not refill. */
struct bucket {
	char *username;
	double tokens;
	double refilled_at;
	double spare_status_at;
	unsigned long refused;
};
static struct bucket *buckets = NULL;
static size_t bucket_capacity = 0;
static size_t bucket_count = 0;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t hash_name(const char *name)
{
	size_t hash = 1469598103934665603ULL;
	for(; *name; name++){
		hash = (hash ^ (unsigned char)*name) * 1099511628211ULL;
	}
	return hash;
}

static bool grow_buckets(void)
{
	size_t i, j, capacity = bucket_capacity ? bucket_capacity * 2 : 1024;
	struct bucket *table = calloc(capacity, sizeof(struct bucket));
	if(table == NULL) return false;
	for(i = 0; i < bucket_capacity; i++){
		if(buckets[i].username == NULL) continue;
		for(j = hash_name(buckets[i].username) & (capacity - 1); table[j].username;
				j = (j + 1) & (capacity - 1));
		table[j] = buckets[i];
	}
	free(buckets);
	buckets = table;
	bucket_capacity = capacity;
	return true;
}

static struct bucket *bucket_for(const char *username)
{
	size_t i;
	if(bucket_count * 2 >= bucket_capacity && !grow_buckets()) return NULL;
	for(i = hash_name(username) & (bucket_capacity - 1); buckets[i].username;
			i = (i + 1) & (bucket_capacity - 1)){
		if(!strcmp(buckets[i].username, username)) return &buckets[i];
	}
	buckets[i].username = strdup(username);
	if(buckets[i].username == NULL) return NULL;
	buckets[i].tokens = publish_burst;
	buckets[i].refilled_at = now_s();
	buckets[i].spare_status_at = -SPARE_STATUS_EVERY_S;
	buckets[i].refused = 0;
	bucket_count++;
	return &buckets[i];
}

/* true when this login may publish one more message now. A retained status (what a
 * gateway's last will is) is let through over the limit once every SPARE_STATUS_EVERY_S, so
 * central still hears that a gateway which spent its burst went offline. */
static bool take_token(const char *username, bool retained_status)
{
	struct bucket *bucket;
	double now;

	if(publish_rate <= 0.0) return true;
	bucket = bucket_for(username);
	if(bucket == NULL) return true; /* out of memory: do not refuse a real gateway for it */
	now = now_s();
	bucket->tokens += (now - bucket->refilled_at) * publish_rate;
	if(bucket->tokens > publish_burst) bucket->tokens = publish_burst;
	bucket->refilled_at = now;
	if(bucket->tokens >= 1.0){
		if(bucket->refused){
			mosquitto_log_printf(MOSQ_LOG_NOTICE,
					"homecall policy: %s is under its publish rate again after %lu refused",
					username, bucket->refused);
			bucket->refused = 0;
		}
		bucket->tokens -= 1.0;
		return true;
	}
	if(retained_status && now - bucket->spare_status_at >= SPARE_STATUS_EVERY_S){
		bucket->spare_status_at = now;
		return true;
	}
	if(bucket->refused++ == 0){
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
				"homecall policy: refusing PUBLISH by %s: over its rate of %g a second (burst %g)",
				username, publish_rate, publish_burst);
	}
	return false;
}

static bool is_central(const char *username)
{
	int i;
	for(i = 0; i < central_user_count; i++){
		if(!strcmp(central_users[i], username)) return true;
	}
	return false;
}

/* topic == "<topic_root>/<username>/<channel>" exactly */
static bool is_own_topic(const char *topic, const char *username, const char *channel)
{
	size_t root_len = strlen(topic_root);
	size_t user_len = strlen(username);

	if(strncmp(topic, topic_root, root_len) || topic[root_len] != '/') return false;
	topic += root_len + 1;
	if(strncmp(topic, username, user_len) || topic[user_len] != '/') return false;
	return !strcmp(topic + user_len + 1, channel);
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *client_id;
	(void)event;
	(void)userdata;

	if(ed->username == NULL || is_central(ed->username)) return MOSQ_ERR_PLUGIN_DEFER;
	client_id = mosquitto_client_id(ed->client);
	if(client_id == NULL
			|| strncmp(client_id, client_id_prefix, strlen(client_id_prefix))
			|| strcmp(client_id + strlen(client_id_prefix), ed->username)){
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
				"homecall policy: refused CONNECT by user %s: its client id must be %s%s",
				ed->username, client_id_prefix, ed->username);
		return MOSQ_ERR_AUTH;
	}
	return MOSQ_ERR_PLUGIN_DEFER; /* the password file decides */
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *username;
	(void)event;
	(void)userdata;

	username = mosquitto_client_username(ed->client);
	if(username == NULL || is_central(username)) return MOSQ_ERR_PLUGIN_DEFER;

	switch(ed->access){
		case MOSQ_ACL_SUBSCRIBE:
			if(is_own_topic(ed->topic, username, "plan")
					|| is_own_topic(ed->topic, username, "cmd")
					|| is_own_topic(ed->topic, username, "ack")){
				return MOSQ_ERR_PLUGIN_DEFER;
			}
			mosquitto_log_printf(MOSQ_LOG_NOTICE,
					"homecall policy: refused SUBSCRIBE by %s to a topic that is not its own", username);
			return MOSQ_ERR_ACL_DENIED;
		case MOSQ_ACL_WRITE:
			if(!is_own_topic(ed->topic, username, "events")
					&& !is_own_topic(ed->topic, username, "status")){
				return MOSQ_ERR_ACL_DENIED;
			}
			if(ed->payloadlen > max_gateway_payload){
				mosquitto_log_printf(MOSQ_LOG_NOTICE,
						"homecall policy: refused PUBLISH by %s: %u bytes is over the %u byte limit",
						username, (unsigned)ed->payloadlen, (unsigned)max_gateway_payload);
				return MOSQ_ERR_ACL_DENIED;
			}
			if(ed->retain && is_own_topic(ed->topic, username, "events")){
				mosquitto_log_printf(MOSQ_LOG_NOTICE,
						"homecall policy: refused retained PUBLISH by %s on its events", username);
				return MOSQ_ERR_ACL_DENIED;
			}
			if(!take_token(username, ed->retain && is_own_topic(ed->topic, username, "status"))){
				return MOSQ_ERR_ACL_DENIED;
			}
			return MOSQ_ERR_PLUGIN_DEFER;
		default:
			return MOSQ_ERR_PLUGIN_DEFER;
	}
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;
	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	int i;
	char *token, *saveptr = NULL, *users = NULL;
	(void)userdata;

	plugin_id = identifier;
	for(i = 0; i < option_count; i++){
		if(!strcmp(options[i].key, "topic_root")){
			topic_root = strdup(options[i].value);
		}else if(!strcmp(options[i].key, "gateway_client_id_prefix")){
			client_id_prefix = strdup(options[i].value);
		}else if(!strcmp(options[i].key, "central_users")){
			users = options[i].value;
		}else if(!strcmp(options[i].key, "max_gateway_payload")){
			max_gateway_payload = (uint32_t)strtoul(options[i].value, NULL, 10);
		}else if(!strcmp(options[i].key, "publish_rate")){
			publish_rate = strtod(options[i].value, NULL);
		}else if(!strcmp(options[i].key, "publish_burst")){
			publish_burst = strtod(options[i].value, NULL);
		}
	}
	if(topic_root == NULL || users == NULL || client_id_prefix == NULL
			|| max_gateway_payload == 0){
		mosquitto_log_printf(MOSQ_LOG_ERR,
				"homecall policy: plugin_opt_topic_root, plugin_opt_central_users, "
				"plugin_opt_gateway_client_id_prefix and plugin_opt_max_gateway_payload are required");
		return MOSQ_ERR_INVAL;
	}
	if(publish_rate > 0.0 && publish_burst < 1.0){
		mosquitto_log_printf(MOSQ_LOG_ERR,
				"homecall policy: plugin_opt_publish_burst must be at least 1 with a publish_rate");
		return MOSQ_ERR_INVAL;
	}
	users = strdup(users);
	for(token = strtok_r(users, " ", &saveptr); token; token = strtok_r(NULL, " ", &saveptr)){
		if(central_user_count == MAX_CENTRAL_USERS) break;
		central_users[central_user_count++] = strdup(token);
	}
	free(users);

	if(mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL)
			|| mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL)){
		return MOSQ_ERR_UNKNOWN;
	}
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	int i;
	(void)userdata;
	(void)options;
	(void)option_count;

	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	for(i = 0; i < central_user_count; i++) free(central_users[i]);
	central_user_count = 0;
	free(topic_root);
	topic_root = NULL;
	free(client_id_prefix);
	client_id_prefix = NULL;
	for(i = 0; i < (int)bucket_capacity; i++) free(buckets[i].username);
	free(buckets);
	buckets = NULL;
	bucket_capacity = bucket_count = 0;
	return MOSQ_ERR_SUCCESS;
}
