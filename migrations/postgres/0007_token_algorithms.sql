-- Issue 29: the algorithm of each app's id_tokens (OpenID Connect Dynamic Client
-- Registration's `id_token_signed_response_alg`): RS256 (the default OpenID Connect
-- requires), ES256 or EdDSA. signing_keys.alg now holds any of the three: one current
-- key per algorithm (app access tokens are ES256).
ALTER TABLE oauth_clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256';
