<#
.SYNOPSIS
Trust the Tollhouse interception CA on Windows, and print the environment variables that runtimes
with their own CA bundles read.

.DESCRIPTION
Adds each certificate of the CA file to the machine's Trusted Root store (certutil -addstore -f
Root; needs an elevated prompt) or, with -CurrentUser, to the user's store. Edge and Chrome
then trust the gateway; Firefox does when its Certificates policy sets ImportEnterpriseRoots.
Runtimes that carry their own bundle need environment variables; -Bundle writes a combined
bundle (the Windows roots plus this CA) for those that replace their roots.

.EXAMPLE
powershell -ExecutionPolicy Bypass -File scripts\install-ca.ps1 -CaFile certs\ca.pem -DryRun
#>
param(
    [string]$CaFile = "certs\ca.pem",
    [switch]$CurrentUser,
    [string]$Bundle = (Join-Path $env:LOCALAPPDATA "tollhouse\trust-bundle.pem"),
    [switch]$DryRun
)
$ErrorActionPreference = "Stop"

function Invoke-Step([string]$Description, [scriptblock]$Action) {
    if ($DryRun) { Write-Host "+ $Description" } else { & $Action }
}

if (-not (Test-Path -LiteralPath $CaFile)) { throw "cannot read the CA certificate $CaFile" }
$CaPath = (Resolve-Path -LiteralPath $CaFile).Path
$Pem = Get-Content -Raw -LiteralPath $CaPath
$Blocks = [regex]::Matches($Pem, "-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----")
if ($Blocks.Count -eq 0) { throw "$CaFile holds no PEM certificate" }

# certutil reads the first certificate of a file: one temporary file per certificate.
$Work = Join-Path ([System.IO.Path]::GetTempPath()) ("install-ca-" + [guid]::NewGuid())
New-Item -ItemType Directory -Path $Work | Out-Null
try {
    $i = 0
    foreach ($Block in $Blocks) {
        $i++
        $File = Join-Path $Work ("{0:d3}.pem" -f $i)
        Set-Content -LiteralPath $File -Value $Block.Value -Encoding ascii
        if ($CurrentUser) {
            Invoke-Step "certutil -user -addstore -f Root $File" { certutil -user -addstore -f Root $File | Out-Host }
        } else {
            Invoke-Step "certutil -addstore -f Root $File" { certutil -addstore -f Root $File | Out-Host }
        }
        if (-not $DryRun -and $LASTEXITCODE -ne 0) { throw "certutil failed ($LASTEXITCODE); run from an elevated prompt or use -CurrentUser" }
    }
} finally {
    Remove-Item -Recurse -Force -LiteralPath $Work
}

# SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and AWS_CA_BUNDLE replace a runtime's roots, so
# they name a bundle of the Windows roots plus this CA; NODE_EXTRA_CA_CERTS adds to Node's own.
Invoke-Step "write $Bundle (Windows root store + $CaPath)" {
    New-Item -ItemType Directory -Force -Path (Split-Path $Bundle) | Out-Null
    $Lines = New-Object System.Collections.Generic.List[string]
    foreach ($Cert in Get-ChildItem Cert:\LocalMachine\Root) {
        $Lines.Add("-----BEGIN CERTIFICATE-----")
        $Lines.Add([Convert]::ToBase64String($Cert.RawData, "InsertLineBreaks"))
        $Lines.Add("-----END CERTIFICATE-----")
    }
    $Lines.Add($Pem.Trim())
    Set-Content -LiteralPath $Bundle -Value $Lines -Encoding ascii
}
Write-Output "setx SSL_CERT_FILE `"$Bundle`""
Write-Output "setx REQUESTS_CA_BUNDLE `"$Bundle`""
Write-Output "setx CURL_CA_BUNDLE `"$Bundle`""
Write-Output "setx AWS_CA_BUNDLE `"$Bundle`""
Write-Output "setx NODE_EXTRA_CA_CERTS `"$CaPath`""
if ($DryRun) { Write-Host "dry run: nothing was changed" }
