-- The tables and columns wg-easy v15 reads (src/server/database/migrations), abridged to what an import needs.
CREATE TABLE interfaces_table (name text PRIMARY KEY NOT NULL, device text NOT NULL, port integer NOT NULL, private_key text NOT NULL,
  public_key text NOT NULL, ipv4_cidr text NOT NULL, ipv6_cidr text NOT NULL, mtu integer NOT NULL, enabled integer NOT NULL,
  created_at text DEFAULT (CURRENT_TIMESTAMP) NOT NULL, updated_at text DEFAULT (CURRENT_TIMESTAMP) NOT NULL);
CREATE TABLE user_configs_table (id text PRIMARY KEY NOT NULL, default_mtu integer NOT NULL, default_persistent_keepalive integer NOT NULL,
  default_dns text NOT NULL, default_allowed_ips text NOT NULL, host text NOT NULL, port integer NOT NULL,
  created_at text DEFAULT (CURRENT_TIMESTAMP) NOT NULL, updated_at text DEFAULT (CURRENT_TIMESTAMP) NOT NULL);
CREATE TABLE clients_table (id integer PRIMARY KEY AUTOINCREMENT NOT NULL, user_id integer NOT NULL, interface_id text NOT NULL,
  name text NOT NULL, ipv4_address text NOT NULL, ipv6_address text NOT NULL, private_key text NOT NULL, public_key text NOT NULL,
  pre_shared_key text NOT NULL, expires_at text, allowed_ips text, server_allowed_ips text NOT NULL, persistent_keepalive integer NOT NULL,
  mtu integer NOT NULL, dns text, server_endpoint text, enabled integer NOT NULL,
  created_at text DEFAULT (CURRENT_TIMESTAMP) NOT NULL, updated_at text DEFAULT (CURRENT_TIMESTAMP) NOT NULL);
INSERT INTO interfaces_table (name, device, port, private_key, public_key, ipv4_cidr, ipv6_cidr, mtu, enabled)
  VALUES ('wg0', 'eth0', 51820, '2Accs5CY1VJnlvBqRkwQCSt4ueTWj2BwsOlGF40XAXs=', 'F9xkRw1dUOuc9Xh0/uYs62s8leEQ3Oa1WaDXW7jDJU0=', '203.0.113.0/24', 'fd00:5e:1::/64', 1420, 1);
INSERT INTO user_configs_table (id, default_mtu, default_persistent_keepalive, default_dns, default_allowed_ips, host, port)
  VALUES ('wg0', 1420, 0, '[]', '["203.0.113.0/24","fd00:5e:1::/64","198.51.100.0/24"]', '198.18.1.1', 51820);
INSERT INTO clients_table (user_id, interface_id, name, ipv4_address, ipv6_address, private_key, public_key, pre_shared_key, expires_at,
  allowed_ips, server_allowed_ips, persistent_keepalive, mtu, dns, enabled, created_at)
VALUES
  (1, 'wg0', 'alice', '203.0.113.2', 'fd00:5e:1::2', 'UATA4SqJHmwWEa3S6zNm1UUxosHOtsxVn1UGpcvfxUk=', '6FOHjGNR8Hv3QHAaJUSEFSXk0mRCy9vwaiWsKFXSk2Q=', 'LDkW8qfjjpgEZW3NJ9OaudcEsuDaTfiBBxNP73UFgfY=', NULL, NULL, '[]', 25, 1420, NULL, 1, '2025-06-01 08:00:00'),
  (1, 'wg0', 'bob', '203.0.113.3', 'fd00:5e:1::3', 'uNoYXNhlBXXoAMv1bDsn6gglorAPs8fL15ADQPkvI1U=', 'ybWgX0cCKiE++5DqitLoVCgzw7dFQitdNyTy4YweTwU=', 'pQ4zfMHXu8ein7YKRbriyDWScdtRduBKeWX2/VdyN9s=', NULL, NULL, '[]', 0, 1420, NULL, 0, '2025-06-02 08:00:00'),
  (1, 'wg0', 'Expired contractor', '203.0.113.4', 'fd00:5e:1::4', 'mHJZq1cPVUdb5IeQXD5u9RNPd4yLTQxf6zdjEADoilc=', 'ja/8lUeNsJF2/aQT+bfMhZ86owaSY0XWrCCyHMJFigo=', 'KVwmq8MrirdFCct6Dxzhvfw8YhjuuuDfbNfGGlQIsvE=', '2025-07-01T00:00:00.000Z', '["203.0.113.0/24"]', '[]', 0, 1380, '["198.51.100.53"]', 1, '2025-06-03 08:00:00');
