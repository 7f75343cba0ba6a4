package apperr

// ProviderError says that a messaging provider refused or could not be
// reached for a call made while the client waited (a template sync): the
// message names the provider and its reason; nothing was changed.
const ProviderError Code = "PROVIDER_ERROR"
