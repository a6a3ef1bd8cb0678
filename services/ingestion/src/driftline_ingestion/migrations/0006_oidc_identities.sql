-- Operators provisioned by single sign-on (oidc.py): the IdP account a user stands for, one
-- user per tenant, issuer and subject. Their password hash is of a random secret, and
-- password login refuses them (identity.py).
ALTER TABLE users ADD COLUMN idp_issuer text, ADD COLUMN idp_subject text;
ALTER TABLE users ADD CONSTRAINT users_idp_account_whole
    CHECK ((idp_issuer IS NULL) = (idp_subject IS NULL));
CREATE UNIQUE INDEX users_idp_account ON users (tenant_id, idp_issuer, idp_subject)
    WHERE idp_subject IS NOT NULL;
