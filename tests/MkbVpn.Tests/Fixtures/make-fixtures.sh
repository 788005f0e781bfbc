#!/usr/bin/env bash
# Writes the import fixtures: installations of PiVPN, wg-easy (v14 JSON, v15 SQLite as SQL text)
# and a hand-written / angristan-style wg-quick server, laid out the way each tool writes them
# (learned from their public scripts; none of their code is used). Fresh real keys from wg(8);
# only the test ranges of docs/testing.md: 203.0.113.0/24, fd00:5e:1::/64, 198.51.100.0/24, 198.18.1.1.
# Run once; the output is committed. schema2/ (the store as schema 2 wrote it) is not made here; see its README.
set -euo pipefail
cd "$(dirname "$0")"
key() { wg genkey; }
pub() { echo "$1" | wg pubkey; }
psk() { wg genpsk; }
EP=198.18.1.1:51820

# ---- PiVPN: /etc/wireguard/{wg0.conf,keys/,configs/} + /etc/pivpn/wireguard/setupVars.conf ----
rm -rf pivpn && mkdir -p pivpn/etc/wireguard/keys pivpn/etc/wireguard/configs pivpn/etc/pivpn/wireguard
P=pivpn/etc/wireguard
S_PRIV=$(key); echo "$S_PRIV" > $P/keys/server_priv; pub "$S_PRIV" > $P/keys/server_pub
cat > pivpn/etc/pivpn/wireguard/setupVars.conf <<V
PLAT=Debian
OSCN=bookworm
USING_UFW=0
IPv4dev=eth0
install_user=pi
install_home=/home/pi
VPN=wireguard
pivpnPORT=51820
pivpnDNS1=198.51.100.53
pivpnDNS2=
pivpnHOST=198.18.1.1
INPUT_CHAIN_EDITED=0
FORWARD_CHAIN_EDITED=0
pivpnDEV=wg0
pivpnNET=203.0.113.0
subnetClass=24
pivpnenableipv6=1
pivpnNETv6="fd00:5e:1::"
subnetClassv6=64
ALLOWED_IPS="203.0.113.0/24, 198.51.100.0/24"
pivpnPROTO=udp
pivpnMTU=1420
pivpnPERSISTENTKEEPALIVE=25
UNATTUPG=1
V
{
  echo '[Interface]'
  echo "PrivateKey = $S_PRIV"
  echo "Address = 203.0.113.1/24,fd00:5e:1::cb00:7101/64"
  echo "MTU = 1420"
  echo "ListenPort = 51820"
} > $P/wg0.conf
: > $P/configs/clients.txt
n=0
for spec in "alice 2 cb00:7102 1" "bob 3 cb00:7103 0" "me@phone 4 cb00:7104 1"; do
  set -- $spec; name=$1; last=$2; hex=$3; enabled=$4
  c=$(key); echo "$c" > "$P/keys/${name}_priv"; pub "$c" > "$P/keys/${name}_pub"; psk > "$P/keys/${name}_psk"
  cat > "$P/configs/${name}.conf" <<C
[Interface]
PrivateKey = $c
Address = 203.0.113.$last/24,fd00:5e:1::$hex/64
DNS = 198.51.100.53

[Peer]
PublicKey = $(cat $P/keys/server_pub)
PresharedKey = $(cat "$P/keys/${name}_psk")
Endpoint = $EP
AllowedIPs = 203.0.113.0/24, 198.51.100.0/24
PersistentKeepalive = 25
C
  block="### begin ${name} ###
[Peer]
PublicKey = $(cat "$P/keys/${name}_pub")
PresharedKey = $(cat "$P/keys/${name}_psk")
AllowedIPs = 203.0.113.$last/32,fd00:5e:1::$hex/128
### end ${name} ###"
  if [[ $enabled == 0 ]]; then block=$(sed 's/^/#[disabled] /' <<< "$block"); fi
  printf '%s\n' "$block" >> $P/wg0.conf
  n=$((n+1))
  echo "${name} $(cat "$P/keys/${name}_pub") $((1700000000 + n * 86400)) $((3405803776 + last))" >> $P/configs/clients.txt
done

# ---- wg-easy v14: /etc/wireguard/wg0.json (+ the wg0.conf it renders, and one client download) ----
rm -rf wg-easy && mkdir -p wg-easy/v14 wg-easy/v15
W_PRIV=$(key); W_PUB=$(pub "$W_PRIV")
a=$(key); ap=$(pub "$a"); as=$(psk)
b=$(key); bp=$(pub "$b"); bs=$(psk)
d=$(key); dp=$(pub "$d")
e=$(key); ep=$(pub "$e"); es=$(psk)
cat > wg-easy/v14/wg0.json <<J
{
  "server": {
    "privateKey": "$W_PRIV",
    "publicKey": "$W_PUB",
    "address": "203.0.113.1"
  },
  "clients": {
    "6d2e4d3a-1f0b-4c52-9a0e-2f1b3c4d5e01": {
      "id": "6d2e4d3a-1f0b-4c52-9a0e-2f1b3c4d5e01",
      "name": "alice",
      "address": "203.0.113.2",
      "privateKey": "$a",
      "publicKey": "$ap",
      "preSharedKey": "$as",
      "createdAt": "2024-03-01T09:15:00.000Z",
      "updatedAt": "2024-03-01T09:15:00.000Z",
      "enabled": true
    },
    "6d2e4d3a-1f0b-4c52-9a0e-2f1b3c4d5e02": {
      "id": "6d2e4d3a-1f0b-4c52-9a0e-2f1b3c4d5e02",
      "name": "bob",
      "address": "203.0.113.3",
      "privateKey": "$b",
      "publicKey": "$bp",
      "preSharedKey": "$bs",
      "createdAt": "2024-03-02T10:00:00.000Z",
      "updatedAt": "2024-04-02T10:00:00.000Z",
      "enabled": false
    },
    "6d2e4d3a-1f0b-4c52-9a0e-2f1b3c4d5e03": {
      "name": "Dave's iPhone 15 Pro",
      "address": "203.0.113.4",
      "privateKey": "$d",
      "publicKey": "$dp",
      "createdAt": "2023-01-05T08:00:00.000Z",
      "updatedAt": "2023-01-05T08:00:00.000Z",
      "enabled": true
    },
    "6d2e4d3a-1f0b-4c52-9a0e-2f1b3c4d5e04": {
      "id": "6d2e4d3a-1f0b-4c52-9a0e-2f1b3c4d5e04",
      "name": "erin",
      "address": "203.0.113.5",
      "publicKey": "$ep",
      "preSharedKey": "$es",
      "createdAt": "2024-05-01T12:00:00.000Z",
      "updatedAt": "2024-05-01T12:00:00.000Z",
      "enabled": true
    }
  }
}
J
for pair in "alice:$a:$as" "bob:$b:$bs"; do
  IFS=: read -r name k s <<< "$pair"
  addr=$([[ $name == alice ]] && echo 203.0.113.2 || echo 203.0.113.3)
  printf '\n[Interface]\nPrivateKey = %s\nAddress = %s/24\nMTU = 1420\n[Peer]\nPublicKey = %s\nPresharedKey = %s\nAllowedIPs = 203.0.113.0/24, 198.51.100.0/24\nPersistentKeepalive = 0\nEndpoint = %s' \
    "$k" "$addr" "$W_PUB" "$s" "$EP" > "wg-easy/v14/$name.conf"
done

# ---- wg-easy v15: the SQLite database, as SQL text (tests build the .db from it) ----
V_PRIV=$(key); V_PUB=$(pub "$V_PRIV")
a=$(key); ap=$(pub "$a"); as=$(psk)
b=$(key); bp=$(pub "$b"); bs=$(psk)
x=$(key); xp=$(pub "$x"); xs=$(psk)
cat > wg-easy/v15/wg-easy.sql <<Q
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
  VALUES ('wg0', 'eth0', 51820, '$V_PRIV', '$V_PUB', '203.0.113.0/24', 'fd00:5e:1::/64', 1420, 1);
INSERT INTO user_configs_table (id, default_mtu, default_persistent_keepalive, default_dns, default_allowed_ips, host, port)
  VALUES ('wg0', 1420, 0, '[]', '["203.0.113.0/24","fd00:5e:1::/64","198.51.100.0/24"]', '198.18.1.1', 51820);
INSERT INTO clients_table (user_id, interface_id, name, ipv4_address, ipv6_address, private_key, public_key, pre_shared_key, expires_at,
  allowed_ips, server_allowed_ips, persistent_keepalive, mtu, dns, enabled, created_at)
VALUES
  (1, 'wg0', 'alice', '203.0.113.2', 'fd00:5e:1::2', '$a', '$ap', '$as', NULL, NULL, '[]', 25, 1420, NULL, 1, '2025-06-01 08:00:00'),
  (1, 'wg0', 'bob', '203.0.113.3', 'fd00:5e:1::3', '$b', '$bp', '$bs', NULL, NULL, '[]', 0, 1420, NULL, 0, '2025-06-02 08:00:00'),
  (1, 'wg0', 'Expired contractor', '203.0.113.4', 'fd00:5e:1::4', '$x', '$xp', '$xs', '2025-07-01T00:00:00.000Z', '["203.0.113.0/24"]', '[]', 0, 1380, '["198.51.100.53"]', 1, '2025-06-03 08:00:00');
Q
for pair in "alice:$a:$as:2:25" "bob:$b:$bs:3:0"; do
  IFS=: read -r name k s last ka <<< "$pair"
  printf '[Interface]\nPrivateKey = %s\nAddress = 203.0.113.%s/32, fd00:5e:1::%s/128\nMTU = 1420\n\n[Peer]\nPublicKey = %s\nPresharedKey = %s\nAllowedIPs = 203.0.113.0/24, fd00:5e:1::/64, 198.51.100.0/24\nPersistentKeepalive = %s\nEndpoint = 198.18.1.1:51820' \
    "$k" "$last" "$last" "$V_PUB" "$s" "$ka" > "wg-easy/v15/$name.conf"
done

# ---- wg-quick: angristan's markers, a peer matched by a client file, an unnamed peer, a commented-out peer ----
rm -rf wg-quick && mkdir -p wg-quick/clients
Q_PRIV=$(key); Q_PUB=$(pub "$Q_PRIV")
a=$(key); ap=$(pub "$a"); as=$(psk)
l=$(key); lp=$(pub "$l")
u=$(key); up=$(pub "$u")
o=$(key); op=$(pub "$o"); os=$(psk)
cat > wg-quick/wg0.conf <<Q
[Interface]
Address = 203.0.113.1/24,fd00:5e:1::1/64
ListenPort = 51820
PrivateKey = $Q_PRIV
PostUp = iptables -I FORWARD -i eth0 -o wg0 -j ACCEPT
PostDown = iptables -D FORWARD -i eth0 -o wg0 -j ACCEPT

### Client alice
[Peer]
PublicKey = $ap
PresharedKey = $as
AllowedIPs = 203.0.113.2/32,fd00:5e:1::2/128

# Tom's laptop (hand-written, no PSK)
[Peer]
PublicKey = $lp
AllowedIPs = 203.0.113.3/32  # office laptop

[Peer]
PublicKey = $up
AllowedIPs = 203.0.113.7/32, fd00:5e:1::7/128
PersistentKeepalive = 15

### Client oldphone
#[Peer]
#PublicKey = $op
#PresharedKey = $os
#AllowedIPs = 203.0.113.9/32,fd00:5e:1::9/128
Q
printf '[Interface]\nPrivateKey = %s\nAddress = 203.0.113.2/32,fd00:5e:1::2/128\nDNS = 198.51.100.53,198.51.100.54\n# Uncomment the next line to set a custom MTU\n# MTU = 1420\n\n[Peer]\nPublicKey = %s\nPresharedKey = %s\nEndpoint = 198.18.1.1:51820\nAllowedIPs = 203.0.113.0/24,fd00:5e:1::/64,198.51.100.0/24\n' \
  "$a" "$Q_PUB" "$as" > wg-quick/clients/wg0-client-alice.conf
printf '[Interface]\nPrivateKey = %s\nAddress = 203.0.113.3/32\n\n[Peer]\nPublicKey = %s\nEndpoint = 198.18.1.1:51820\nAllowedIPs = 203.0.113.0/24, 198.51.100.0/24\nPersistentKeepalive = 25\n' \
  "$l" "$Q_PUB" > wg-quick/clients/toms-laptop.conf
printf '[Interface]\nPrivateKey = %s\nAddress = 203.0.113.9/32,fd00:5e:1::9/128\n\n[Peer]\nPublicKey = %s\nPresharedKey = %s\nEndpoint = 198.18.1.1:51820\nAllowedIPs = 203.0.113.0/24,fd00:5e:1::/64,198.51.100.0/24\n' \
  "$o" "$Q_PUB" "$os" > wg-quick/clients/wg0-client-oldphone.conf
# The unnamed peer's own config lives only on its device: the import never sees it (public key only).
mkdir -p wg-quick/device-only
printf '[Interface]\nPrivateKey = %s\nAddress = 203.0.113.7/32, fd00:5e:1::7/128\n\n[Peer]\nPublicKey = %s\nEndpoint = 198.18.1.1:51820\nAllowedIPs = 203.0.113.0/24, 198.51.100.0/24\nPersistentKeepalive = 15\n' \
  "$u" "$Q_PUB" > wg-quick/device-only/peer7.conf
echo "fixtures written"
